# frozen_string_literal: true

# The application spec/jobs_sidekiq_spec.rb runs in real Sidekiq processes (and loads in a
# plain Ruby process to enqueue ActiveJob jobs): jobs with Task::Job and Task::Recovery, under
# Sidekiq's strict arguments, on the Cassandra node in a keyspace of their own. Every
# execution logs "start PID ID" and "done PID ID" to a Redis list (Redis outlives the
# Sidekiq processes), so the spec can tell which executions a SIGKILL interrupted.
$LOAD_PATH.unshift File.expand_path("../../lib", __dir__)
require "json"
require "logger"
require "sidekiq"
require "active_job"
require "task/active_job"
require "task/job"

Sidekiq.strict_args!
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)
ActiveJob::Base.queue_adapter = :sidekiq
ActiveJob::Base.logger = Sidekiq.logger

Task::DataInterface::Interface.adapter_builder = lambda do |_options|
  Task::DataInterface::CassandraAdapter.new(hosts: ENV.fetch("TASK_CASSANDRA_HOSTS", "127.0.0.1").split(","),
                                            port: Integer(ENV.fetch("TASK_CASSANDRA_PORT", "9042")),
                                            keyspace: ENV.fetch("TASK_JOBS_KEYSPACE"))
end

class JobsBoard
  include Task::Task

  data_attr_reader :color

  # Long enough that a SIGKILL lands inside some executions.
  def execute(_opts = {})
    Sidekiq.redis { |r| r.rpush("jobs-spec:log:#{task_list}", "start #{Process.pid} #{id}") }
    sleep 0.2
    Sidekiq.redis { |r| r.rpush("jobs-spec:log:#{task_list}", "done #{Process.pid} #{id}") }
    color
  end
end

# One task per job, given as its as_json (or its list and id).
class JobsPaintJob
  include Sidekiq::Job
  include Task::Job

  task_claim for: 4
end

# Run by a scheduler every few seconds (here: the spec), on the lists it is given.
class JobsRecoverJob
  include Sidekiq::Job
  include Task::Recovery

  sidekiq_options retry: false
  recovers for: 4
end

# ActiveJob on the :sidekiq adapter: the task goes through ActiveJob's serializer.
class JobsActivePaintJob < ActiveJob::Base
  include Task::Job

  task_claim for: 4
end

class JobsActiveBrokenJob < ActiveJob::Base
  include Task::Job

  def perform(task)
    raise IOError, "no paint for #{task.id}"
  end
end
