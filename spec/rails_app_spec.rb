# frozen_string_literal: true

# The gem in a real Rails 6.1 application (Debian's ruby-rails, no network), as a new user
# meets it: `rails new`, the gem by path:, `rails generate task:install` and `task:task`,
# `rails task:schema:create` against the test node, the app booted (rails runner, and
# `rails server` answering on loopback), a task made by a controller action, the mounted web
# page, a fork, the application's jobs (Task::Job, Task::Recovery) given perform_later(task)
# with no require of their own, and the application's own tests on the test helpers
# (task/testing). The application is made once for the file (before(:all)).
RSpec.describe "a Rails application", :cassandra do
  keyspace = "task_rails_spec"

  before(:all) do
    options = cassandra_options
    hosts = options[:hosts].map { |h| h.include?(":") ? h : "#{h}:#{options[:port]}" }.join(",")
    # The production section of the generated config/task.yml reads these (hosts filled by
    # the library, the keyspace by the file's ERB).
    @app = RailsApp.new("shop", env: { "TASK_CASSANDRA_HOSTS" => hosts, "TASK_CASSANDRA_KEYSPACE" => keyspace })
    @app.create!
    @install = @app.run!("bin/rails", "generate", "task:install")
    @generate = @app.run!("bin/rails", "generate", "task:task", "PaintBoard", "board", "color:integer")
    # The controller and route a developer would write, and the web page's mount uncommented.
    @app.write("app/controllers/paints_controller.rb", <<~RUBY)
      class PaintsController < ApplicationController
        skip_forgery_protection

        def create
          task = PaintBoardTask.create(task_list: params.require(:list), board: params.require(:board),
                                       color: Integer(params.require(:color)))
          render json: Task::Task.find(task.task_list, task.id).as_json
        end
      end
    RUBY
    routes = @app.read("config/routes.rb")
    mount = routes[/^ *# (mount Task::Web\.new.*)$/, 1]
    @app.write("config/routes.rb", routes.sub("draw do\n", "draw do\n  #{mount}\n  post \"/paints\" => \"paints#create\"\n"))
    # The task's work (its generated execute is empty), and the application's jobs: one that
    # runs a task with the mixin's own perform (task.execute), one whose perform raises. The
    # production environment queues them on ActiveJob's :async adapter (in-process threads).
    @app.write("app/tasks/paint_board_task.rb", @app.read("app/tasks/paint_board_task.rb").sub(
      /^    # The work, from the task's data.*$/,
      '    File.open(Rails.root.join("tmp", "painted.log"), "a") { |f| f.puts("#{task_list}/#{id} #{board} #{color}") }'
    ))
    @app.write("app/jobs/paint_job.rb", <<~RUBY)
      class PaintJob < ApplicationJob
        include Task::Job
        task_claim for: 60
      end
    RUBY
    @app.write("app/jobs/broken_paint_job.rb", <<~'RUBY')
      class BrokenPaintJob < ApplicationJob
        include Task::Job

        def perform(task)
          raise "no paint for #{task.board}"
        end
      end
    RUBY
    production = @app.read("config/environments/production.rb")
    @app.write("config/environments/production.rb",
               production.sub(/^ *# config\.active_job\.queue_adapter .*$/, "  config.active_job.queue_adapter = :async"))
  end

  after(:all) { @app&.remove }

  let(:list) { unique_list("rails_spec") }

  it "generates config/task.yml, the commented mount of the web page, the task class and its test" do
    expect(@install).to include("create  config/task.yml", "route  # The task gem's web page (Task::Web)",
                                "insert  test/test_helper.rb")
    expect(@app.read("config/task.yml")).to include("development:\n  store: sqlite\n  path: db/tasks_development.sqlite3",
                                                    "test:\n  store: memory",
                                                    "production:\n  store: cassandra",
                                                    'keyspace: <%= ENV.fetch("TASK_CASSANDRA_KEYSPACE", "shop_tasks") %>')
    expect(@app.read("config/routes.rb")).to include('# mount Task::Web.new(secret: Rails.application.key_generator.generate_key("task web")), at: "/tasks"')
    expect(File.exist?(@app.path("config/initializers/task.rb"))).to be(false)
    expect(@generate).to include("create  app/tasks/paint_board_task.rb", "create  test/tasks/paint_board_task_test.rb")
    expect(@app.read("app/tasks/paint_board_task.rb"))
      .to include("class PaintBoardTask\n  include Task::Task\n\n  data_attr_reader :board\n  data_attr_reader :color\n")
    # The test helpers wired into the application's test helper; the generated test uses them.
    expect(@app.read("test/test_helper.rb"))
      .to include("require \"rails/test_help\"\nrequire \"task/testing\"\n",
                  "class ActiveSupport::TestCase\n  # The task gem's test helpers: a fresh memory store for each test, and\n" \
                  "  # assert_task_saved / refute_task_saved / assert_task_completed.\n  include Task::Testing::Minitest\n")
    test = @app.read("test/tasks/paint_board_task_test.rb")
    expect(test).to start_with("require \"test_helper\"\n\nclass PaintBoardTaskTest < ActiveSupport::TestCase\n  def build_task\n")
    expect(test).to include('assert_task_saved "paint_board", PaintBoardTask, id: task.id, data: { board: "board 1", color: 1 }',
                            "assert_task_completed task")
  end

  it "creates and tunes the schema with rake tasks, and task:doctor passes on the configured store" do
    ok, out = @app.rails("task:schema:create")
    expect(ok).to be(true), out
    # The taskrb command's schema create and tune --run, on the configured store.
    expect(out).to match(/^keyspace #{keyspace}: (created|present, left as it was) \(class=SimpleStrategy, replication_factor=1\)$/)
    expect(out).to match(/^table #{keyspace}\.tasks: (created|present, left as it was)$/)
    ok, out = @app.rails("task:schema:tune")
    expect(ok).to be(true), out
    expect(out).to match(/^ALTER TABLE #{keyspace}\.tasks WITH gc_grace_seconds = 10800 .*;$/)
    expect(out.lines.last).to match(/\A-- applied \(2 statements\)$/)
    ok, out = @app.rails("task:doctor")
    expect(ok).to be(true), out
    expect(out).to include("pass  keyspace: #{keyspace}", "pass  write, read and delete a task")
    expect(out).not_to include("FAIL")

    # Its exit status is the command's: a keyspace that does not exist fails the check.
    ok, out = @app.run("bin/rails", "task:doctor", env: { "RAILS_ENV" => "production", "TASK_CASSANDRA_KEYSPACE" => "task_rails_none" })
    expect(ok).to be(false)
    expect(out).to match(/^FAIL  keyspace: task_rails_none does not exist/)
    # A store with no schema says so.
    ok, out = @app.rails("task:schema:create", environment: "test")
    expect(ok).to be(true), out
    expect(out).to eq("the memory store has no tables: it lives in this process only; nothing to create\n")
  end

  it "boots and serves: a controller action saves a task, the mounted web page shows it" do
    @app.start_server
    response = @app.http { |h| h.post("/paints", URI.encode_www_form(list: list, board: "b1", color: "3")) }
    expect(response.code).to eq("200"), response.body
    made = JSON.parse(response.body)
    expect(made).to include("task_list" => list, "type" => "PaintBoardTask", "data" => { "board" => "b1", "color" => 3 })

    index = @app.http { |h| h.get("/tasks") }
    expect(index.code).to eq("200"), index.body
    expect(index.body).to include(list)
    page = @app.http { |h| h.get("/tasks/lists/#{list}/tasks/#{made.fetch("id")}") }
    expect(page.code).to eq("200"), page.body
    expect(page.body).to include("PaintBoardTask", "b1")
  ensure
    @app.stop_server
  end

  it "gives a forked child of the booted app a connection of its own; the parent keeps its one session" do
    seen = @app.runner(<<~RUBY)
      Rails.logger.level = :debug
      PaintBoardTask.create(task_list: #{list.dump}, id: "parent", board: "p", color: 1)
      sessions = Task::DataInterface::CassandraAdapter.open_sessions
      reader, writer = IO.pipe
      pid = fork do
        reader.close
        before = Task::DataInterface::CassandraAdapter.open_sessions
        PaintBoardTask.create(task_list: #{list.dump}, id: "child", board: "c", color: 2)
        writer.puts JSON.generate(pid: Process.pid, before: before, after: Task::DataInterface::CassandraAdapter.open_sessions)
        writer.close
        exit!(0)
      end
      writer.close
      child = JSON.parse(reader.read)
      Process.wait(pid)
      PaintBoardTask.create(task_list: #{list.dump}, id: "parent again", board: "p", color: 1)
      puts JSON.generate(pid: Process.pid, parent_before: sessions, parent_after: Task::DataInterface::CassandraAdapter.open_sessions,
                         child: child, child_status: $?.exitstatus, ids: Task::Task.all(#{list.dump}).map(&:id).to_a,
                         logger: Task.logger.equal?(Rails.logger), driver_level: Task::Logging.driver_level)
    RUBY
    expect(seen).to include("parent_before" => 1, "parent_after" => 1, "child_status" => 0,
                            "ids" => ["child", "parent", "parent again"], "logger" => true, "driver_level" => "warn")
    expect(seen.fetch("child")).to include("before" => 0, "after" => 1)
    # Task.logger is Rails.logger: each process logged the session it opened; the driver's
    # own lines below WARN were left out although the log was at debug.
    log = @app.read("log/production.log")
    opened = log.lines.grep(/task \[#{keyspace}\.tasks@.*\]: session opened/)
    expect(opened.grep(/##{seen.fetch("pid")}\]/).size).to eq(1)
    expect(opened.grep(/##{seen.fetch("child").fetch("pid")}\]/).size).to eq(1)
    expect(log).not_to match(/task \[driver\]: (DEBUG|INFO) /)
  end

  it "develops on a SQLite file under db/, made on first use; an initializer's Task.configure and config.task have the last word" do
    @app.write("config/initializers/task.rb", <<~RUBY)
      Task.configure { |config| config.options = config.options.merge(synchronous: :normal) }
    RUBY
    development = @app.read("config/environments/development.rb")
    @app.write("config/environments/development.rb",
               development.sub("configure do\n", "configure do\n  config.task.driver_log_level = :debug\n"))
    seen = @app.runner(<<~RUBY, environment: "development")
      PaintBoardTask.create(task_list: "dev", id: "1", board: "d", color: 4)
      puts JSON.generate(adapter: Task.adapter.class.name, options: Task.adapter.options.slice(:path, :synchronous),
                         board: Task::Task.find("dev", "1").board, driver_level: Task::Logging.driver_level)
    RUBY
    expect(seen).to eq("adapter" => "Task::DataInterface::SqliteAdapter", "board" => "d", "driver_level" => "debug",
                       "options" => { "path" => @app.path("db", "tasks_development.sqlite3"), "synchronous" => "normal" })
  ensure
    FileUtils.rm_f(@app.path("config/initializers/task.rb"))
  end

  it "runs the app's jobs: perform_later(task) on :async completes it, a raising job records its error, recovery runs what is left" do
    @app.write("app/jobs/recover_paints_job.rb", <<~RUBY)
      # For a cron/scheduler entry: runs each task of the list that no worker holds.
      class RecoverPaintsJob < ApplicationJob
        include Task::Recovery
        recovers #{list.dump}, for: 60
      end
    RUBY
    seen = @app.runner(<<~RUBY)
      list = #{list.dump}
      good = PaintBoardTask.create(task_list: list, id: "good", board: "g", color: 1)
      bad = PaintBoardTask.create(task_list: list, id: "bad", board: "b", color: 2)
      PaintBoardTask.create(task_list: list, id: "held", board: "h", color: 3).claim(for: 600, owner: "a live worker")
      PaintJob.perform_later(good)
      BrokenPaintJob.perform_later(bad)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 60
      until Task::Task.find(list, "good").nil? && Task::Task.find(list, "bad")&.last_error
        raise "the jobs did not finish within 60 s" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

        sleep 0.05
      end
      failed = Task::Task.find(list, "bad").then { |t| [t.attempts, t.last_error] }
      ran = RecoverPaintsJob.perform_now
      painted = File.readlines(Rails.root.join("tmp", "painted.log"), chomp: true).select { |l| l.start_with?("\#{list}/") }
      puts JSON.generate(adapter: PaintJob.queue_adapter.class.name, failed: failed,
                         ran: ran, left: Task::Task.all(list).map(&:id).to_a, painted: painted)
    RUBY
    expect(seen).to eq("adapter" => "ActiveJob::QueueAdapters::AsyncAdapter",
                       "failed" => [1, "RuntimeError: no paint for b"],
                       "ran" => 1, "left" => ["held"],
                       "painted" => ["#{list}/good g 1", "#{list}/bad b 2"])
  end

  it "runs the app's tests (Minitest, then RSpec) on the test helpers: a fresh memory store, assert_task_* and the matchers" do
    @app.write("test/jobs/paint_job_test.rb", <<~'RUBY')
      require "test_helper"

      class PaintJobTest < ActiveSupport::TestCase
        include ActiveJob::TestHelper

        test "perform_later(task): the job completes it" do
          task = PaintBoardTask.create(task_list: "paints", board: "b1", color: 2)
          assert_task_saved "paints", PaintBoardTask, id: task.id, data: { board: "b1", color: 2 }
          perform_enqueued_jobs { PaintJob.perform_later(task) }
          assert_task_completed task
        end

        test "a job that raises leaves its task saved, with the error" do
          task = PaintBoardTask.create(task_list: "paints", board: "b2", color: 1)
          assert_raises(RuntimeError) { BrokenPaintJob.perform_now(task) }
          assert_task_saved "paints", id: task.id
          refute_task_saved "paints", data: { board: "b3" }
          assert_equal "RuntimeError: no paint for b2", Task::Task.find("paints", task.id).last_error
        end
      end
    RUBY
    ok, out = @app.run("bin/rails", "test", "test/tasks", "test/jobs", env: { "RAILS_ENV" => "test" })
    expect(ok).to be(true), out
    expect(out).to match(/^4 runs, \d+ assertions, 0 failures, 0 errors, 0 skips$/)

    # An application with spec/ (and its rails_helper) gets a spec instead; before the
    # install generator wires the helpers into rails_helper.rb, the spec requires them itself.
    @app.write("spec/rails_helper.rb", <<~RUBY)
      ENV["RAILS_ENV"] ||= "test"
      require_relative "../config/environment"
      # Add additional requires below this line. Rails is not loaded until this point!
    RUBY
    out = @app.run!("bin/rails", "generate", "task:task", "Billing::SendInvoiceTask", "invoice_id:integer")
    expect(out).to include("create  app/tasks/billing/send_invoice_task.rb", "create  spec/tasks/billing/send_invoice_task_spec.rb")
    spec = @app.read("spec/tasks/billing/send_invoice_task_spec.rb")
    expect(spec).to start_with("require \"rails_helper\"\n# A fresh memory store for each example, and have_saved_task / " \
                               "be_completed_task (or in\n# rails_helper.rb, as task:install does).\nrequire \"task/testing\"\n\n")
    expect(spec).to include('expect("billing_send_invoice").to have_saved_task(described_class, id: task.id, data: { invoice_id: 1 })',
                            "expect(task).to be_completed_task")
    # The install generator run again: what it did stays as it is, rails_helper.rb is wired.
    out = @app.run!("bin/rails", "generate", "task:install")
    expect(out).to include("identical  config/task.yml", "insert  spec/rails_helper.rb")
    expect(out).not_to include("route", "test/test_helper.rb")
    expect(@app.read("spec/rails_helper.rb")).to end_with("Rails is not loaded until this point!\n" \
                                                          "# The task gem's test helpers: a fresh memory store for each example, and\n" \
                                                          "# have_saved_task / be_completed_task matchers.\nrequire \"task/testing\"\n")
    ok, out = @app.run("bundle", "exec", "rspec", "spec/tasks")
    expect(ok).to be(true), out
    expect(out).to include("2 examples, 0 failures")
  end
end
