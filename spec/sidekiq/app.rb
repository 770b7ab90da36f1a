# frozen_string_literal: true

# The application the Sidekiq spec runs in a real Sidekiq process: a generator job saves tasks
# and enqueues one worker job per task with its as_json (under strict arguments, as Sidekiq 7
# has them); worker jobs rebuild, execute and complete their task; a recovery job finishes
# whatever is left in the store.
$LOAD_PATH.unshift File.expand_path("../../lib", __dir__)
require "json"
require "sidekiq"
require "task"

# What Sidekiq 7 does by default: job arguments must be JSON-native.
Sidekiq.strict_args!

Task::DataInterface::Interface.adapter_builder = lambda do |_options|
  Task::DataInterface::CassandraAdapter.new(hosts: ENV.fetch("TASK_CASSANDRA_HOSTS", "127.0.0.1").split(","),
                                            port: Integer(ENV.fetch("TASK_CASSANDRA_PORT", "9042")),
                                            keyspace: "task_spec")
end

class PaintBoard
  include Task::Task

  data_attr_reader :board

  # Records every execution, so the spec can tell that each task ran at least once.
  def execute(_opts = {})
    Sidekiq.redis { |r| r.rpush("task-spec:executed", id) }
    sleep 0.01
    board
  end
end

class GenerateJob
  include Sidekiq::Worker

  # Every task is saved before any is handed out: once this job has recorded that it is done,
  # the store alone knows all the work, whatever happens to the queue.
  def perform(list, count)
    tasks = Array.new(count) { |i| PaintBoard.create(task_list: list, id: format("%05d", i), board: i) }
    Sidekiq.redis { |r| r.set("task-spec:generated:#{list}", count) }
    tasks.each { |task| WorkJob.perform_async(task.as_json) }
  end
end

class WorkJob
  include Sidekiq::Worker

  def perform(task_hash)
    task = Task::Task.from_hash(task_hash)
    task.execute
    task.complete
  end
end

class RecoverJob
  include Sidekiq::Worker

  def perform(list)
    Task::Generators::ExistingTasks.new(list).each do |task|
      task.execute
      task.complete
    end
  end
end
