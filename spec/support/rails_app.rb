# frozen_string_literal: true

require "fileutils"
require "json"
require "net/http"
require "socket"
require "tmpdir"

# A real Rails application, made by Debian's `rails new` (no network) in a temporary
# directory, taking the gem from this checkout (`path:`) with every other gem resolved from
# the installed ones (`bundle install --local`). Its commands run as a developer would run
# them: bin/rails in the application's directory, under its own Gemfile.
class RailsApp
  ROOT = File.expand_path("../..", __dir__)
  SECRET = "0123456789abcdef" * 8

  attr_reader :dir

  # +env+: variables for every command (the store's settings).
  def initialize(name, env: {})
    @parent = Dir.mktmpdir("task-rails")
    @dir = File.join(@parent, name)
    @env = env
    @server = nil
  end

  # rails new, a Gemfile of installed gems and the gem by path:, bundle install --local.
  def create!
    # Only what the gem needs: no database, assets, JavaScript, mailers, cable or Spring.
    flags = %w[--skip-bundle --skip-git --skip-javascript --skip-webpack-install --skip-active-record
               --skip-action-mailer --skip-action-mailbox --skip-action-text --skip-active-storage
               --skip-action-cable --skip-sprockets --skip-spring --skip-listen --skip-bootsnap
               --skip-system-test --skip-jbuilder --skip-turbolinks]
    run!("rails", "new", @dir, *flags, chdir: @parent)
    File.write(path("Gemfile"), <<~GEMFILE)
      source "https://rubygems.org"
      gem "rails", "~> 6.1.7"
      gem "webrick"
      gem "task", path: #{ROOT.dump}
      group :test do
        gem "rspec"
      end
    GEMFILE
    run!("bundle", "install", "--local")
    self
  end

  def path(*parts)
    File.join(@dir, *parts)
  end

  def read(*parts)
    File.read(path(*parts))
  end

  def write(relative, text)
    FileUtils.mkdir_p(File.dirname(path(relative)))
    File.write(path(relative), text)
  end

  # [success, output] of a command in the application (stderr with stdout).
  def run(*command, env: {}, chdir: @dir)
    full = { "BUNDLE_GEMFILE" => path("Gemfile"), "BUNDLE_APP_CONFIG" => path(".bundle"), "RUBYLIB" => nil,
             "RUBYOPT" => nil, "TASK_SQLITE_PATH" => nil, "SECRET_KEY_BASE" => SECRET, "DISABLE_SPRING" => "1" }
    full = full.merge(@env).merge(env)
    out = IO.popen(full, command, chdir: chdir, err: %i[child out], &:read)
    [$?.success?, out]
  end

  def run!(*command, **options)
    ok, out = run(*command, **options)
    raise "#{command.join(" ")} failed in #{@dir}:\n#{out}" unless ok

    out
  end

  # bin/rails ARGS in +environment+: [success, output].
  def rails(*args, environment: "production")
    run("bin/rails", *args, env: { "RAILS_ENV" => environment })
  end

  # `rails runner` of +script+ in +environment+; the JSON of its last line of output.
  def runner(script, environment: "production")
    file = path("tmp", "runner-#{SecureRandom.hex(4)}.rb")
    FileUtils.mkdir_p(File.dirname(file))
    File.write(file, script)
    ok, out = rails("runner", file, environment: environment)
    raise "rails runner failed:\n#{out}" unless ok

    JSON.parse(out.lines.last)
  end

  # `rails server` (WEBrick) on a free loopback port, answering once this returns.
  def start_server(environment: "production")
    port = TCPServer.open("127.0.0.1", 0) { |s| s.addr[1] }
    log = File.open(path("log", "server.out"), "w")
    full = { "BUNDLE_GEMFILE" => path("Gemfile"), "BUNDLE_APP_CONFIG" => path(".bundle"), "RUBYLIB" => nil,
             "RUBYOPT" => nil, "TASK_SQLITE_PATH" => nil, "SECRET_KEY_BASE" => SECRET, "RAILS_ENV" => environment }
    pid = Process.spawn(full.merge(@env), "bin/rails", "server", "-u", "webrick", "-b", "127.0.0.1", "-p", port.to_s,
                        chdir: @dir, out: log, err: log, pgroup: true)
    log.close
    @server = [pid, port]
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 60
    until answering?(port)
      raise "rails server did not answer:\n#{File.read(path("log", "server.out"))}" if Process.waitpid(pid, Process::WNOHANG)
      raise "rails server did not answer within 60 s" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      sleep 0.1
    end
    port
  end

  def http
    Net::HTTP.start("127.0.0.1", @server.fetch(1), read_timeout: 30) { |h| yield h }
  end

  def stop_server
    return unless @server

    pid, = @server
    @server = nil
    Process.kill("TERM", pid)
    Process.wait(pid)
  rescue Errno::ESRCH, Errno::ECHILD
    nil
  end

  def remove
    stop_server
    FileUtils.rm_rf(@parent)
  end

  private

  def answering?(port)
    Socket.tcp("127.0.0.1", port, connect_timeout: 1) { true }
  rescue SystemCallError
    false
  end
end
