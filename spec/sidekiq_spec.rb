# frozen_string_literal: true

require "redis"
require "sidekiq"
require "sidekiq/api"
require "tmpdir"

# Debian's Sidekiq 6.4 calls Redis#sadd in a way redis-rb 4.8 warns about on every push.
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

# A real Sidekiq 6 process (Debian's) on a real redis-server, the tasks on the Cassandra node.
# The Sidekiq process is killed with SIGKILL in the middle of the work and its queue is lost;
# a recovery job in a new Sidekiq process finishes what was left.
RSpec.describe "with Sidekiq", :sidekiq do
  ROOT = File.expand_path("..", __dir__)
  REDIS_PORT = Integer(ENV.fetch("TASK_SPEC_REDIS_PORT", "6391"))
  TASKS = 300

  before(:all) do
    @redis_server = RedisServer.new(REDIS_PORT, "task-sidekiq")
    @dir = @redis_server.dir
    @redis = @redis_server.client
    Sidekiq.configure_client { |c| c.redis = { url: redis_url } }
    cassandra_adapter # the keyspace and table exist before Sidekiq starts
  end

  after(:all) do
    @redis_server&.stop
  end

  def redis_url
    "redis://127.0.0.1:#{REDIS_PORT}/0"
  end

  def start_sidekiq
    env = { "REDIS_URL" => redis_url, "TASK_CASSANDRA_HOSTS" => cassandra_options[:hosts].join(","),
            "TASK_CASSANDRA_PORT" => cassandra_options[:port].to_s }
    spawn(env, "sidekiq", "-r", File.join(ROOT, "spec", "sidekiq", "app.rb"), "-c", "5", "-q", "default",
          out: File.join(@dir, "sidekiq.log"), err: %i[child out])
  end

  def wait_until(limit, what)
    deadline = Time.now + limit
    until yield
      raise "timed out after #{limit} s waiting for #{what}; Sidekiq log:\n#{File.read(File.join(@dir, 'sidekiq.log'))[-3000..]}" if Time.now > deadline

      sleep 0.1
    end
  end

  it "hands a task to a job in its JSON-native form, which Sidekiq's strict arguments take, and back" do
    Sidekiq.strict_args!
    task = FetchFile.build(task_list: unique_list("strict"), id: "s1", filename: "s.txt", nested: { "k" => [1, :v] })
    # task_rb's hand-off, as_hash, has Symbol keys: refused under strict arguments (Sidekiq 7's default).
    expect { Sidekiq::Client.push("class" => "WorkJob", "queue" => "strict", "args" => [task.as_hash]) }
      .to raise_error(ArgumentError, /native JSON types/)
    Sidekiq::Client.push("class" => "WorkJob", "queue" => "strict", "args" => [task.as_json])
    pushed = Sidekiq::Queue.new("strict").first.args.first
    expect(pushed).to eq(task.as_json)
    expect(JSON.generate(pushed)).to eq(task.to_json)
    back = Task::Task.from_hash(pushed)
    expect(back).to be_a(FetchFile)
    expect([back.task_list, back.id, back.filename]).to eq([task.task_list, "s1", "s.txt"])
    expect(back.data).to eq(filename: "s.txt", nested: { "k" => [1, "v"] })
  ensure
    Sidekiq.strict_args!(:warn)
    Sidekiq::Queue.new("strict").clear
  end

  it "runs every task at least once although the Sidekiq process was killed mid-way" do
    list = unique_list("sidekiq")
    store = cassandra_adapter
    sidekiq = start_sidekiq
    Sidekiq::Client.push("class" => "GenerateJob", "args" => [list, TASKS])
    # Killed once the generator has saved every task (a generator killed earlier would itself
    # have to be retried, which is Sidekiq's business, not this gem's) and a third have run.
    wait_until(60, "the generator to save every task") { @redis.get("task-spec:generated:#{list}") == TASKS.to_s }
    wait_until(60, "a third of the tasks to run") { @redis.llen("task-spec:executed") >= TASKS / 3 }
    Process.kill("KILL", sidekiq)
    Process.wait(sidekiq)

    # The queue is lost with the process (as with a Redis without persistence): only the
    # task store knows what is left.
    Sidekiq::Queue.new("default").clear
    left = store.rows(list).count
    expect(left).to be > 0

    sidekiq = start_sidekiq
    Sidekiq::Client.push("class" => "RecoverJob", "args" => [list])
    wait_until(120, "the task list to empty") { store.rows(list).first(1).empty? }
    Process.kill("TERM", sidekiq)
    Process.wait(sidekiq)

    executed = @redis.lrange("task-spec:executed", 0, -1)
    expected = (0...TASKS).map { |i| format("%05d", i) }
    expect(expected - executed).to eq([])
    RSpec.configuration.reporter.message(
      "    Sidekiq: #{TASKS} tasks, #{left} left after SIGKILL, #{executed.size} executions in all, 0 left after recovery"
    )
  end
end
