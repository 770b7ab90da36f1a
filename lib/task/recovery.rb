# frozen_string_literal: true

require_relative "../task"

module Task
  # Recovery: runs what workers left behind. Each list the application names is walked by
  # Task::Task.claim_each (lazily, claiming a batch of tasks at a time); each task
  # nobody holds is claimed, executed and completed; tasks others hold are skipped, lapsed
  # claims taken over, dead tasks left alone. A task that fails has its failure recorded
  # (fail_attempt) and the walk goes on; once every list is walked, Task::Recovery::Failed is
  # raised naming each failed task, so the scheduler sees the run fail.
  #
  # As a job class (Sidekiq or ActiveJob), meant for a cron/scheduler entry:
  #
  #   class RecoverTasks
  #     include Sidekiq::Job           # or: class RecoverTasks < ApplicationJob
  #     include Task::Recovery
  #     recovers "uploads", "emails", for: 600
  #   end
  #
  # Arguments given to perform (list names) replace the class's lists for that run. The job
  # executes each task with `recover_task(task)`, which calls `task.execute` unless the class
  # defines its own.
  module Recovery
    # Raised by Task::Recovery.run once every list was walked, when some tasks failed; each
    # failure was recorded on its task. #failures lists them as { task_list:, id:, error: }.
    class Failed < ::Task::Error
      # { task_list:, id:, error: } for each task whose execution raised.
      attr_reader :failures

      # The message names each failed list/id; `failures` as #failures.
      def initialize(message, failures)
        super(message)
        @failures = failures
      end
    end

    # What a run did: tasks run (executed and completed) in all and per list, and the
    # failures ({ task_list:, id:, error: }).
    Result = Struct.new(:ran, :by_list, :failures)

    # Walks each list of `lists:` and runs every task nobody holds: claims it for `for:`
    # seconds (as `owner:`, the default owner unless given), yields it (or calls
    # `task.execute` without a block), completes it. A StandardError from the block is
    # recorded with fail_attempt and the walk goes on; any other exception (Interrupt,
    # Sidekiq::Shutdown) is recorded too and raised at once (claim_each's rule; the tasks of
    # the batch not reached yet are given back). Returns a Result; raises
    # Task::Recovery::Failed, naming each failed list/id, when some failed. Logs a line per
    # list to `logger` (Task.logger unless given).
    def self.run(lists:, for:, owner: nil, logger: nil)
      lease = binding.local_variable_get(:for)
      lists = Array(lists).flatten.map(&:to_s)
      raise ArgumentError, "Task::Recovery.run needs at least one list in lists:" if lists.empty?

      owner ||= ::Task::Task.default_owner
      result = Result.new(0, {}, [])
      lists.each do |list|
        ran, failed = recover_list(list, lease, owner, result.failures) { |task| block_given? ? yield(task) : task.execute }
        result.by_list[list] = ran
        result.ran += ran
        ::Task::Job.log(logger, failed.zero? ? :info : :warn, "recovery of #{list}: #{ran} tasks run, #{failed} failed")
      end
      raise Failed.new(failure_message(result.failures), result.failures) unless result.failures.empty?

      result
    end

    def self.recover_list(list, lease, owner, failures)
      failed = 0
      on_failure = lambda do |task, error|
        failures << { task_list: list, id: task.id, error: error }
        failed += 1
      end
      ran = ::Task::Task.claim_each(list, for: lease, owner: owner, on_failure: on_failure) { |task| yield task }
      [ran, failed]
    end
    private_class_method :recover_list

    def self.failure_message(failures)
      shown = failures.first(10).map { |f| "#{f[:task_list]}/#{f[:id]} (#{f[:error].class}: #{f[:error].message})" }
      more = failures.size > 10 ? " and #{failures.size - 10} more" : ""
      "recovery: #{failures.size} task(s) failed, each recorded with fail_attempt: #{shown.join(', ')}#{more}"
    end
    private_class_method :failure_message

    # Gives the job class `recovers` (see Task::Recovery).
    def self.included(base)
      base.extend(ClassMethods)
    end

    # The class side of a recovery job.
    module ClassMethods
      # Names the lists this job recovers and the lease it claims each task for (seconds;
      # 300 unless given): `recovers "uploads", "emails", for: 600`.
      def recovers(*lists, for: ::Task::Job::DEFAULT_LEASE)
        lease = binding.local_variable_get(:for)
        unless lease.is_a?(Numeric) && lease.real? && lease.positive? && lease.finite?
          raise ArgumentError, "#{name}: recovers needs for: a number of seconds > 0, got #{lease.inspect}"
        end

        @recovery_lists = lists.flatten.map(&:to_s).freeze
        @recovery_for = lease
      end

      # The lists named by `recovers` (a subclass inherits them), or [].
      def recovery_lists
        return @recovery_lists if instance_variable_defined?(:@recovery_lists)

        superclass.respond_to?(:recovery_lists) ? superclass.recovery_lists : []
      end

      # The lease named by `recovers`, or 300 s.
      def recovery_for
        return @recovery_for if instance_variable_defined?(:@recovery_for)

        superclass.respond_to?(:recovery_for) ? superclass.recovery_for : ::Task::Job::DEFAULT_LEASE
      end
    end

    # Recovers the lists given (names), or the class's (`recovers`) when none are. Returns the
    # number of tasks run; raises Task::Recovery::Failed when some failed (see Task::Recovery.run).
    def perform(*lists)
      lists = lists.flatten
      lists = self.class.recovery_lists if lists.empty?
      if lists.empty?
        raise ArgumentError, "#{self.class.name}: no lists to recover: name them with `recovers \"list\", for: seconds` " \
                             "or pass them to perform"
      end

      logger = respond_to?(:logger) ? self.logger : nil
      ::Task::Recovery.run(lists: lists, for: self.class.recovery_for, logger: logger) { |task| recover_task(task) }.ran
    end

    # Runs one recovered task: `task.execute` unless the job class defines its own.
    def recover_task(task)
      task.execute
    end
  end
end

# Task::Job loads this file at its end, and this file loads it.
require_relative "job" unless defined?(::Task::Job)
