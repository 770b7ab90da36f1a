# frozen_string_literal: true

require "fileutils"
require "tmpdir"

# An application that takes the gem from a checkout with Bundler (`path:`), resolving every
# gem locally (`--local`): it loads when the extension is built, and says how to build it
# when it is not.
RSpec.describe "with Bundler" do
  root = File.expand_path("..", __dir__)

  def bundle(dir, *args)
    env = { "BUNDLE_GEMFILE" => File.join(dir, "Gemfile"), "BUNDLE_APP_CONFIG" => File.join(dir, ".bundle"),
            "RUBYLIB" => nil, "RUBYOPT" => nil }
    out = IO.popen(env, ["bundle", *args], chdir: dir, err: %i[child out], &:read)
    [$?.success?, out]
  end

  def app(dir, gem_dir)
    File.write(File.join(dir, "Gemfile"), <<~GEMFILE)
      source "https://rubygems.org"
      gem "task", path: #{gem_dir.dump}
    GEMFILE
    ok, out = bundle(dir, "install", "--local")
    expect(ok).to be(true), out
  end

  it "loads the gem from a path: source" do
    Dir.mktmpdir("task-bundler") do |dir|
      app(dir, root)
      ok, out = bundle(dir, "exec", "ruby", "-e", <<~RUBY)
        require "task"
        class Job; include Task::Task; end
        Task::DataInterface::Interface.adapter_builder = ->(_) { Task::DataInterface::MemoryAdapter.new }
        Job.create(task_list: "l", id: "1", x: 1)
        puts [Task::VERSION, Task::Task.find("l", "1").data, $LOADED_FEATURES.grep(/task_native/).first].inspect
      RUBY
      expect(ok).to be(true), out
      version, data, native = eval(out.lines.last) # rubocop:disable Security/Eval
      expect([version, data]).to eq([Task::VERSION, { x: 1 }])
      expect(native).to start_with(File.join(root, "lib", "task"))
    end
  end

  it "names the fix when the checkout's extension is not built" do
    Dir.mktmpdir("task-bundler") do |dir|
      checkout = File.join(dir, "task")
      FileUtils.mkdir_p(checkout)
      FileUtils.cp_r(File.join(root, "lib"), checkout)
      FileUtils.cp(File.join(root, "task.gemspec"), checkout)
      Dir[File.join(checkout, "lib", "task", "*.{so,bundle,dll}")].each { |f| File.delete(f) }
      app(dir, checkout)
      ok, out = bundle(dir, "exec", "ruby", "-e", 'require "task"')
      expect(ok).to be(false)
      expect(out).to include("LoadError", "native extension (task/task_native) is not built", "rake compile", checkout)
    end
  end
end
