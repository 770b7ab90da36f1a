# frozen_string_literal: true

require "spec_helper"
require "open3"
require "rbconfig"
require "redis"
require "set"
require "sidekiq"
require "sidekiq/api"
require "tmpdir"

# Debian's Sidekiq 6.4 calls Redis#sadd in a way redis-rb 4.8 warns about on every push.
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

# A task class of the application (spec/jobs/sidekiq_app.rb has its execute).
class JobsBoard
  include Task::Task
end

# Task::Job and Task::Recovery in real Sidekiq 6 processes (Debian's), under strict arguments,
# on the Cassandra node in a keyspace of their own: a worker process is SIGKILLed in the
# middle of the work, a new one and a recovery job scheduled every second finish it. And
# ActiveJob on the :sidekiq adapter: perform_later(task) through the serializer.
RSpec.describe "Task::Job and Task::Recovery in Sidekiq processes", :sidekiq do
  def redis_port
    Integer(ENV.fetch("TASK_SPEC_JOBS_REDIS_PORT", "6393"))
  end

  def redis_url
    "redis://127.0.0.1:#{redis_port}/0"
  end

  def keyspace
    "task_jobs_spec"
  end

  def app
    File.join(__dir__, "jobs", "sidekiq_app.rb")
  end

  before(:all) do
    @redis_server = RedisServer.new(redis_port, "task-jobs")
    @dir = @redis_server.dir
    @redis = @redis_server.client
    Sidekiq.configure_client { |c| c.redis = { url: redis_url } }
    @strictness = Sidekiq.options[:on_complex_arguments]
    Sidekiq.strict_args!
    @store = Task::DataInterface::CassandraAdapter.new(**cassandra_options, keyspace: keyspace)
    @store.create_schema
  end

  after(:all) do
    Sidekiq.strict_args!(@strictness)
    @redis_server&.stop
  end

  def env
    { "REDIS_URL" => redis_url, "TASK_CASSANDRA_HOSTS" => cassandra_options[:hosts].join(","),
      "TASK_CASSANDRA_PORT" => cassandra_options[:port].to_s, "TASK_JOBS_KEYSPACE" => keyspace }
  end

  def start_sidekiq(name)
    @log = File.join(@dir, "#{name}.log")
    spawn(env, "sidekiq", "-r", app, "-c", "5", "-q", "default", "-t", "5", out: @log, err: %i[child out])
  end

  def stop_sidekiq(pid)
    Process.kill("TERM", pid)
    Process.wait(pid)
  end

  def wait_until(limit, what)
    deadline = now + limit
    until yield
      raise "timed out after #{limit} s waiting for #{what}; Sidekiq log:\n#{File.read(@log)[-3000..]}" if now > deadline

      sleep 0.05
    end
  end

  # The execution log: [event, pid, id] per line.
  def executions(list)
    @redis.lrange("jobs-spec:log:#{list}", 0, -1).map { |line| line.split(" ") }
  end

  it "runs perform_later(task) on ActiveJob's :sidekiq adapter; a raising job records its failure and goes to Sidekiq's retries" do
    started = now
    list = unique_list("active")
    use_adapter(@store)
    sidekiq = start_sidekiq("active")
    # Enqueued from a process of the application: ActiveJob (and ActiveSupport) stay out of this one.
    out, status = Open3.capture2e(env, RbConfig.ruby, "-r", app, "-e", <<~RUBY, list)
      JobsActivePaintJob.perform_later(JobsBoard.create(task_list: ARGV[0], id: "ok", color: "green"))
      JobsActiveBrokenJob.perform_later(JobsBoard.create(task_list: ARGV[0], id: "bad"))
      puts "strict: \#{Sidekiq.options[:on_complex_arguments]}"
    RUBY
    expect(status.success?).to be(true), out
    expect(out).to include("strict: raise")

    retries = Sidekiq::RetrySet.new
    wait_until(30, "the good task completed and the broken job in Sidekiq's retries") do
      Task::Task.find(list, "ok").nil? && retries.size == 1 && @store.claims(list).any? { |c| c[:owner].nil? }
    end
    stop_sidekiq(sidekiq)

    expect(executions(list).map(&:first)).to eq(%w[start done])
    expect(Task::Task.all(list).map(&:id).to_a).to eq(["bad"])
    bad = Task::Task.find(list, "bad")
    expect([bad.attempts, bad.last_error]).to eq([1, "IOError: no paint for bad"])
    retried = retries.first
    expect([retried.item["wrapped"], retried.item["error_class"], retried.item["error_message"]])
      .to eq(["JobsActiveBrokenJob", "IOError", "no paint for bad"])
    report("ActiveJob on Sidekiq: #{(now - started).round(1)} s")
  ensure
    Sidekiq::RetrySet.new.clear
    Sidekiq::Queue.new("default").clear
  end

  it "executes every task although a worker process was SIGKILLed; only executions it interrupted run twice" do
    started = now
    list = unique_list("jobs")
    count = 150
    use_adapter(@store)
    tasks = Array.new(count) { |i| JobsBoard.build(task_list: list, id: format("%04d", i), color: "c#{i}") }
    @store.store_many(tasks)
    # Strict arguments refuse the task object; its as_json, or its list and id, are JSON-native.
    expect { Sidekiq::Client.push("class" => "JobsPaintJob", "args" => [tasks.first]) }
      .to raise_error(ArgumentError, /native JSON types/)
    args = tasks.each_with_index.map { |t, i| (i % 10) == 9 ? [t.task_list, t.id] : [t.as_json] }
    Sidekiq::Client.push_bulk("class" => "JobsPaintJob", "args" => args)

    first = start_sidekiq("first")
    wait_until(60, "a third of the tasks to run") { executions(list).count { |e| e[0] == "done" } >= count / 3 }
    # Killed while some executions are under way (each takes 0.2 s, 5 at a time).
    wait_until(20, "an execution in progress") do
      log = executions(list)
      (log.select { |e| e[0] == "start" }.map(&:last) - log.select { |e| e[0] == "done" }.map(&:last)).any?
    end
    Process.kill("KILL", first)
    Process.wait(first)
    at_kill = executions(list)
    stored_after_kill = Task::Task.all(list).map(&:id).to_set
    expect(stored_after_kill).not_to be_empty

    # The queue keeps the jobs the killed process had not fetched (those it was running are
    # lost with it): a new process runs them, and a recovery job, pushed every second as a
    # scheduler would, runs the tasks whose jobs were lost once their claims lapse.
    second = start_sidekiq("second")
    recoveries = 0
    pushed_at = nil
    wait_until(60, "the store to empty") do
      if pushed_at.nil? || now - pushed_at >= 1
        Sidekiq::Client.push("class" => "JobsRecoverJob", "args" => [list])
        recoveries += 1
        pushed_at = now
      end
      Task::Task.count(list).zero?
    end
    wait_until(20, "the queue to drain") { Sidekiq::Queue.new("default").size.zero? && Sidekiq::Workers.new.size.zero? }
    stop_sidekiq(second)

    log = executions(list)
    starts = log.select { |e| e[0] == "start" }.group_by(&:last).transform_values { |es| es.map { |e| Integer(e[1]) } }
    done = log.select { |e| e[0] == "done" }.map(&:last).to_set
    started_by_killed = at_kill.select { |e| e[0] == "start" }.map(&:last).to_set
    interrupted = started_by_killed - at_kill.select { |e| e[0] == "done" }.map(&:last)
    doubles = starts.select { |_id, pids| pids.size > 1 }.keys.to_set

    # Every task executed to the end, and no task is left.
    expect(tasks.map(&:id).to_set - done).to be_empty
    expect(Task::Task.all(list).to_a).to eq([])
    # A claim row outlives its task only when the kill landed inside the killed process's
    # complete, between its delete of the task and its delete of the claim: a task that ran
    # once, to the end, in the killed process. Its owner has lapsed; only its attempts stay.
    leftover = @store.claims(list)
    finished_by_killed = at_kill.select { |e| e[0] == "done" }.map(&:last).to_set
    expect(leftover.map { |c| c[:owner] }.compact).to eq([])
    expect(leftover.map { |c| c[:id] }.to_set - (finished_by_killed - doubles)).to be_empty
    # Each execution the kill interrupted ran again, once, in the new process; any other task
    # ran twice only if the kill landed after its execute and before its complete (it was
    # still stored); none ran twice in one process (claims keep the new process's jobs and
    # recovery apart).
    expect(interrupted).not_to be_empty
    expect(interrupted - doubles).to be_empty
    expect(doubles - (stored_after_kill & started_by_killed)).to be_empty
    expect(doubles.map { |id| starts[id] }.uniq).to all(eq([first, second]))
    expect(starts.values.map { |pids| pids.tally.values.max }.max).to eq(1)
    expect(doubles.size).to be <= 5
    gone = File.read(@log).scan("no longer stored (already completed)").size
    report("Sidekiq jobs: #{count} tasks, #{started_by_killed.size} started before SIGKILL, #{interrupted.size} " \
           "interrupted inside execute, #{(doubles - interrupted).size} between execute and complete; " \
           "#{log.count { |e| e[0] == 'start' }} executions, #{doubles.size} ran twice (all of them among those); " \
           "#{recoveries} recovery runs, #{gone} jobs found their task already completed, #{leftover.size} claim rows left " \
           "by a kill inside complete; #{(now - started).round(1)} s")
  ensure
    Sidekiq::Queue.new("default").clear
  end
end
