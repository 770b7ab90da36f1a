# frozen_string_literal: true

require "rubygems/package"
require "tmpdir"

# `gem build` then `gem install --local` into an empty GEM_HOME: the extension compiles with
# cargo on install, and `require "task"` works from there with no checkout on the load path.
RSpec.describe "the gem" do
  # The RBS signatures, which both gems carry (sig/task.rbs and one file per store).
  sig_files = Dir.chdir(File.expand_path("..", __dir__)) { Dir["sig/**/*.rbs"].sort }

  # `gem build` of the source gem into dir/task.gem.
  def build_source_gem(root, dir)
    built = IO.popen(%w[gem build task.gemspec --output] + [File.join(dir, "task.gem")],
                     chdir: root, err: %i[child out], &:read)
    expect($?.success?).to be(true), built
    File.join(dir, "task.gem")
  end

  it "installs from its .gem file and loads from the install" do
    root = File.expand_path("..", __dir__)
    Dir.mktmpdir("task-gem") do |dir|
      build_source_gem(root, dir)
      # bench/raw is a cargo workspace of its own: the extension builds without it.
      files = Gem::Package.new(File.join(dir, "task.gem")).spec.files
      expect(files.grep(%r{\Abench/})).to be_empty
      expect(files).to include("Cargo.lock", "ext/task_native/extconf.rb", "exe/taskrb", *sig_files)

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

  it "stops a source install within seconds, naming what to install, when Rust or libclang is missing" do
    root = File.expand_path("..", __dir__)
    Dir.mktmpdir("task-gem") do |dir|
      build_source_gem(root, dir)
      home = File.join(dir, "home")
      base = { "GEM_HOME" => home, "GEM_PATH" => home, "RUBYLIB" => nil, "RUBYOPT" => nil }
      {
        "no Rust" => [{ "PATH" => "/usr/bin:/bin", "HOME" => dir, "CARGO" => nil },
                      ["cargo (Rust) was not found", "rustup", "1.88"]],
        "no libclang" => [{ "LIBCLANG_PATH" => File.join(dir, "nowhere") },
                          ["libclang was not found", "apt-get install libclang-dev"]]
      }.each do |name, (env, says)|
        started = now
        out = IO.popen(base.merge(env), %w[gem install --local --no-document] + [File.join(dir, "task.gem")],
                       chdir: dir, err: %i[child out], &:read)
        took = now - started
        expect($?.success?).to be(false)
        expect(out).to include(*says)
        expect(Dir[File.join(home, "**", "target")]).to eq([]) # nothing built, nothing left
        report format("source gem with %s: stopped after %.1f s", name, took)
      end
    end
  end

  it "installs the precompiled gem for this platform in seconds, with no cargo on the PATH" do
    root = File.expand_path("..", __dir__)
    built = IO.popen(%w[rake native], chdir: root, err: %i[child out], &:read)
    expect($?.success?).to be(true), built
    abi = RUBY_VERSION[/\A\d+\.\d+/]
    file = File.join(root, "pkg", "task-#{Task::VERSION}-#{Gem::Platform.local}.gem")
    spec = Gem::Package.new(file).spec
    expect(spec.platform.to_s).to eq(Gem::Platform.local.to_s)
    expect(spec.extensions).to eq([])
    expect(spec.files).to include("lib/task.rb", "lib/task/#{abi}/task_native.#{RbConfig::CONFIG["DLEXT"]}", "exe/taskrb",
                                  *sig_files)
    expect(sig_files).to include("sig/task.rbs", "sig/adapters/cassandra.rbs")
    expect(spec.executables).to eq(["taskrb"])
    expect(spec.files.grep(/\.rs\z|Cargo/)).to eq([])

    Dir.mktmpdir("task-native-gem") do |dir|
      home = File.join(dir, "home")
      env = { "GEM_HOME" => home, "GEM_PATH" => home, "PATH" => "/usr/bin:/bin", "RUBYLIB" => nil, "RUBYOPT" => nil,
              "CARGO" => nil, "RUSTUP_HOME" => nil }
      %w[cargo rustc].each { |tool| expect(system(env, "sh", "-c", "command -v #{tool}", out: File::NULL)).to be(false) }
      started = now
      # With its ri documentation, as `gem install` makes it by default.
      installed = IO.popen(env, %w[gem install --local --document ri] + [file], chdir: dir, err: %i[child out], &:read)
      took = now - started
      expect($?.success?).to be(true), installed
      out = IO.popen(env, [RbConfig.ruby, "-e", <<~RUBY], chdir: dir, err: %i[child out], &:read)
        require "task"
        class Job; include Task::Task; end
        Task::DataInterface::Interface.adapter_builder = ->(_) { Task::DataInterface::MemoryAdapter.new }
        Job.create(task_list: "l", id: "1", x: 1)
        puts [$LOADED_FEATURES.grep(/task_native/).first, Task::Task.find("l", "1").data].inspect
      RUBY
      expect($?.success?).to be(true), out
      native, data = eval(out.lines.last) # rubocop:disable Security/Eval
      expect(native).to start_with(home)
      expect(native).to end_with("task/#{abi}/task_native.#{RbConfig::CONFIG["DLEXT"]}")
      expect(data).to eq(x: 1)
      # The operators' command comes with it, as taskrb (no `task`: Taskwarrior's and go-task's name).
      help = IO.popen(env, [File.join(home, "bin", "taskrb"), "--help"], chdir: dir, err: %i[child out], &:read)
      expect([$?.success?, help]).to match([true, /Usage: taskrb .*schema create.*doctor/m])
      expect(File.exist?(File.join(home, "bin", "task"))).to be(false)
      # The signatures are installed with it.
      installed_gem = Dir[File.join(home, "gems", "task-*")].first
      expect(sig_files.reject { |f| File.file?(File.join(installed_gem, f)) }).to eq([])
      # ri finds the documentation, native methods included, as a user types the names.
      ri = Dir[File.join(home, "doc", "task-*", "ri")].first
      expect(ri).not_to be_nil, installed
      { "Task::Task.build" => "TaskClass.build(task_list:, id: nil, **data) -> task",
        "Task::Task#save" => "save(ttl: nil) -> nil",
        "Task::Task" => "Include Task::Task in a class to make it a task class" }.each do |name, text|
        shown = IO.popen(env, ["ri", "-T", "-f", "markdown", "-d", ri, name], err: %i[child out], &:read)
        expect([$?.success?, shown.gsub(/\s+/, " ")]).to match([true, a_string_including(text)])
      end
      footprint = Dir[File.join(home, "**", "*")].select { |f| File.file?(f) }.sum { |f| File.size(f) }
      report format("precompiled gem: %.1f MB; installed in %.1f s (no cargo on the PATH), %.1f MB on disk",
                    File.size(file) / 1048576.0, took, footprint / 1048576.0)
    end
  end
end
