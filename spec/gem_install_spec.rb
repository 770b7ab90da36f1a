# frozen_string_literal: true

require "rubygems/package"
require "tmpdir"

# `gem build` then `gem install --local` into an empty GEM_HOME: the extension compiles with
# cargo on install, and `require "task"` works from there with no checkout on the load path.
RSpec.describe "the gem" do
  it "installs from its .gem file and loads from the install" do
    root = File.expand_path("..", __dir__)
    Dir.mktmpdir("task-gem") do |dir|
      built = IO.popen(%w[gem build task.gemspec --output] + [File.join(dir, "task.gem")],
                       chdir: root, err: %i[child out], &:read)
      expect($?.success?).to be(true), built
      # bench/raw is a cargo workspace of its own: the extension builds without it.
      files = Gem::Package.new(File.join(dir, "task.gem")).spec.files
      expect(files.grep(%r{\Abench/})).to be_empty
      expect(files).to include("Cargo.lock", "ext/task_native/extconf.rb")

      home = File.join(dir, "home")
      # A target dir of its own, kept between runs, so a warm run does not rebuild the crates.
      env = { "GEM_HOME" => home, "GEM_PATH" => home, "CARGO_TARGET_DIR" => File.join(root, "target", "gem-install"),
              "RUBYLIB" => nil, "RUBYOPT" => nil }
      installed = IO.popen(env, %w[gem install --local --no-document] + [File.join(dir, "task.gem")],
                           chdir: dir, err: %i[child out], &:read)
      expect($?.success?).to be(true), installed

      script = <<~RUBY
        require "task"
        native = $LOADED_FEATURES.grep(/task_native/).first
        class Job; include Task::Task; end
        Task::DataInterface::Interface.adapter_builder = ->(_) { Task::DataInterface::MemoryAdapter.new }
        Job.create(task_list: "l", id: "1", x: 1)
        puts [native, Task::Task.find("l", "1").data].inspect
      RUBY
      out = IO.popen(env, [RbConfig.ruby, "-e", script], chdir: dir, err: %i[child out], &:read)
      expect($?.success?).to be(true), out
      native, data = eval(out) # rubocop:disable Security/Eval
      expect(native).to start_with(home)
      expect(native).not_to include(root)
      # The release profile strips debug info (36 MB with line tables, about 8 MB without).
      expect(File.size(native)).to be < 16 * 1024 * 1024
      expect(data).to eq(x: 1)
    end
  end
end
