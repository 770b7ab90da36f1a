# frozen_string_literal: true

module Task
  module Tasks
    # A task made of the tasks stored under data[:child_task_list]: executing it executes
    # each child and completes each one that succeeded.
    class CompositeTask
      include ::Task::Task

      data_attr_reader :child_task_list

      # Returns the children's return values, in the order they ran. A child that raises
      # stops the run and stays stored, to be picked up again.
      def execute(opts = {})
        ::Task::Task.all(child_task_list).map do |task|
          result = task.execute(opts)
          task.complete
          result
        end.force
      end
    end
  end
end
