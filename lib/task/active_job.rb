# frozen_string_literal: true

require "active_job"
require_relative "job"

module Task
  # The ActiveJob serializer of tasks: once `require "task/active_job"` has run,
  # `SomeJob.perform_later(task)` passes the task as its JSON form (as_json, String keys
  # all the way down, plus ActiveJob's "_aj_serialized" marker), which every queue adapter
  # stores as it is (Sidekiq's strict arguments included), and the job's perform gets a task
  # of the same class back. A task whose class is not defined in the process running the job
  # raises Task::Error::InvalidType naming the class, list and id (ActiveJob wraps it in
  # ActiveJob::DeserializationError).
  class ActiveJobSerializer < ActiveJob::Serializers::ObjectSerializer
    # True for any task (an object whose class includes Task::Task).
    def serialize?(argument)
      argument.is_a?(::Task::Task)
    end

    # The task's as_json, marked as this serializer's.
    def serialize(task)
      super(task.as_json)
    end

    # The task again, of its class (see Task::Job.task_from).
    def deserialize(hash)
      ::Task::Job.task_from(hash.except(ActiveJob::Arguments::OBJECT_SERIALIZER_KEY))
    end

    private

    def klass
      ::Task::Task
    end
  end
end

ActiveJob::Serializers.add_serializers(Task::ActiveJobSerializer)
