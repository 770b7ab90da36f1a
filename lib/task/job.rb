# frozen_string_literal: true

require_relative "../task"

module Task
  # A mixin for Sidekiq jobs (`include Sidekiq::Job` or `Sidekiq::Worker`) and ActiveJob jobs
  # that run one task each: the job is given the task, claims it, runs its `perform(task)`
  # (the task's own `execute` unless the job defines one), completes the task, and when
  # perform raises records the failure on the task (`fail_attempt`) and re-raises, so that the
  # queue's own retry takes over.
  #
  #   class PaintJob
  #     include Sidekiq::Job
  #     include Task::Job
  #     task_claim for: 120            # the lease; 300 s unless told
  #
  #     def perform(task)              # optional: task.execute by default
  #       task.execute(color: "red")
  #     end
  #   end
  #
  #   PaintJob.perform_async(task.as_json)            # Sidekiq: the JSON form
  #   PaintJob.perform_async(task.task_list, task.id) # or the list and id (read from the store)
  #   PaintJob.perform_later(task)                    # ActiveJob: require "task/active_job" (Rails: nothing)
  #
  # The first argument is the task: a Task::Task, its as_json (or as_hash) Hash, or a list
  # name followed by an id (the task is then read from the store). Arguments after it are
  # passed to perform after the task.
  #
  # When the claim is not won the job does nothing and returns nil, with a line in the log:
  # * the task is no longer stored: it was completed (by another job or by recovery), and
  #   there is nothing left to do (info);
  # * another worker holds a live claim on it: that worker runs it, or recovery does once
  #   the claim lapses (info);
  # * the task is dead (its attempts used up): it waits for Task::Task#retry! (warn).
  #
  # A perform that raises a StandardError has it recorded with fail_attempt (the claim is
  # given up, so the next attempt need not wait for the lease) and re-raised. Any other
  # exception (Interrupt, SignalException, Sidekiq::Shutdown: the process is going away) only
  # gives the claim up, and is re-raised. While perform runs, the claim is renewed every half
  # lease (a thread of the job's own), so that a perform longer than its lease is not run by
  # another worker meanwhile; `task_claim for: 120, renew: false` leaves that to perform
  # (`task.renew(for: seconds)`).
  module Job
    # The lease a job claims its task for, in seconds, unless its class says otherwise.
    DEFAULT_LEASE = 300

    # Builds the task a Hash describes (as_json's String keys or as_hash's Symbol keys). An
    # unknown class raises Task::Error::InvalidType naming it, the list and the id; a Hash that
    # is not a task's raises ArgumentError showing it.
    def self.task_from(value)
      return value if value.is_a?(::Task::Task)
      raise ArgumentError, "expected a Task::Task or its as_json Hash, got #{value.inspect}" unless value.is_a?(Hash)

      type = value["type"] || value[:type]
      begin
        ::Task::Task.from_hash(value)
      rescue NoMethodError
        raise
      rescue NameError => e
        raise unless e.name && type.to_s.split("::").include?(e.name.to_s)

        list = value["task_list"] || value[:task_list]
        id = value["id"] || value[:id]
        raise ::Task::Error::InvalidType,
              "task #{list.inspect}/#{id.inspect}: its class #{type.inspect} is not defined in this process " \
              "(#{e.message.lines.first.strip}); load the file that defines it before the job runs"
      end
    end

    # Runs `task` as a job does: claims it for `for:` seconds (as `owner:`, the default owner
    # unless given), yields it, completes it when the block returns and gives back the
    # block's value. When the block raises a StandardError, it is recorded with fail_attempt
    # and re-raised; any other exception gives the claim up and is re-raised. When the claim
    # is not won, logs why to `logger` (see Task::Job) and returns nil without yielding.
    #
    # With `renew:` (the default), the claim is renewed every half lease while the block runs
    # (LeaseKeeper).
    def self.run(task, for:, owner: nil, logger: nil, renew: true)
      lease = binding.local_variable_get(:for)
      owner ||= ::Task::Task.default_owner
      unless task.claim(for: lease, owner: owner)
        log_not_claimed(task, logger)
        return nil
      end

      begin
        keeper = renew ? LeaseKeeper.new(task, lease, owner, logger) : nil
        begin
          result = yield task
        ensure
          keeper&.stop
        end
      rescue StandardError => e
        give_up(task, logger) { task.fail_attempt(e, owner: owner) }
        raise
      rescue Exception # rubocop:disable Lint/RescueException
        give_up(task, logger) { task.release(owner: owner) }
        raise
      end
      task.complete
      result
    end

    # Renews a job's claim every half lease while its perform runs, from a thread of its own,
    # until stopped (before the task is completed or its failure recorded). A renewal that
    # finds the claim lapsed (the store failed renewals for longer than the lease) claims the
    # task again; one that finds another worker holding it is logged and ends the renewals. A
    # store error is logged and the renewal tried again a quarter of the lease later.
    class LeaseKeeper
      def initialize(task, lease, owner, logger)
        @task = task
        @lease = lease
        @owner = owner
        @logger = logger
        @lock = Mutex.new
        @wake = ConditionVariable.new
        @stopped = false
        @thread = Thread.new { keep }
        @thread.report_on_exception = false
      end

      # Ends the renewals; returns once no renewal is in progress.
      def stop
        @lock.synchronize do
          @stopped = true
          @wake.signal
        end
        @thread.join
        nil
      end

      private

      def keep
        Thread.current.name = "task-lease"
        pause = @lease / 2.0
        loop do
          stopped = @lock.synchronize do
            @wake.wait(@lock, pause) unless @stopped
            @stopped
          end
          break if stopped

          pause = renew
          break if pause.nil?
        end
      end

      # Seconds until the next renewal, or nil when the claim is another worker's now.
      def renew
        where = "task #{@task.task_list}/#{@task.id}"
        return @lease / 2.0 if @task.renew(for: @lease, owner: @owner)
        # The claim lapsed (renewals failed for longer than the lease): claimed again when
        # nobody took it meanwhile.
        if @task.claim(for: @lease, owner: @owner)
          Job.log(@logger, :warn, "#{where}: its claim lapsed while perform ran; claimed again")
          return @lease / 2.0
        end

        Job.log(@logger, :warn, "#{where}: its claim lapsed while perform ran and another worker holds it " \
                                "now (or the task is gone); no longer renewed")
        nil
      rescue StandardError => e
        Job.log(@logger, :warn, "#{where}: renewing its claim failed (#{e.class}: #{e.message}); " \
                                "trying again in #{@lease / 4.0} s")
        @lease / 4.0
      end
    end

    # Why a claim was not won, read from the store (only on that path): "gone", "dead" or
    # "held" with a log line saying so.
    def self.log_not_claimed(task, logger) # :nodoc:
      where = "task #{task.task_list}/#{task.id}"
      if ::Task::Task.find(task.task_list, task.id).nil?
        log(logger, :info, "#{where}: no longer stored (already completed); nothing to do")
        return :gone
      end

      info = ::Task::Task.interface.claim_info(task.task_list, task.id)
      limit = ::Task::Task.interface.adapter.respond_to?(:max_attempts) && ::Task::Task.interface.adapter.max_attempts
      if info && limit && info[:attempts] >= limit
        log(logger, :warn, "#{where}: dead after #{info[:attempts]} attempts (last error: #{info[:last_error].inspect}); " \
                           "skipped until Task::Task#retry!")
        return :dead
      end

      log(logger, :info, "#{where}: claimed by another worker; skipped (it runs the task, or recovery does once its claim lapses)")
      :held
    end

    # Records the outcome of a failed perform; a store error while doing so is logged and
    # swallowed, so that the perform's own exception is the one raised (the claim then lapses
    # by itself).
    def self.give_up(task, logger) # :nodoc:
      yield
    rescue StandardError => e
      log(logger, :error, "task #{task.task_list}/#{task.id}: could not record the failure " \
                          "(#{e.class}: #{e.message}); its claim lapses by itself")
    end

    # Logs to `logger`, else Task.logger, else nowhere.
    def self.log(logger, level, message) # :nodoc:
      logger ||= ::Task.logger
      logger&.public_send(level, message)
      nil
    end

    # The task, and the arguments for perform after it, from a job's arguments.
    def self.task_and_rest(args) # :nodoc:
      first = args.first
      case first
      when ::Task::Task, Hash then [task_from(first), args.drop(1)]
      when String, Symbol
        list = first
        id = args.fetch(1) { raise ArgumentError, "a job given the list #{list.inspect} needs the task's id after it" }
        [::Task::Task.find(list, id) || GoneTask.new(list, id), args.drop(2)]
      else
        raise ArgumentError, "a Task::Job's first argument is a task, its as_json Hash, or a list and an id; got #{first.inspect}"
      end
    end

    # What a job given a list and an id gets when the store no longer holds the task: claiming
    # it fails (it is gone), so the job logs that and does nothing.
    GoneTask = Struct.new(:task_list, :id) do
      def claim(**)
        false
      end
    end
    private_constant :GoneTask

    # Gives the job class task_claim and wraps its perform (see Task::Job).
    def self.included(base)
      base.extend(ClassMethods)
      base.prepend(Perform)
    end

    # The class side of a Task::Job.
    module ClassMethods
      # Sets the lease (seconds) this job class claims its tasks for: `task_claim for: 600`,
      # and whether the claim is renewed every half lease while perform runs (`renew:`, true
      # unless told). Subclasses inherit them.
      def task_claim(for:, renew: true)
        lease = binding.local_variable_get(:for)
        unless lease.is_a?(Numeric) && lease.real? && lease.positive? && lease.finite?
          raise ArgumentError, "#{name}: task_claim needs for: a number of seconds > 0, got #{lease.inspect}"
        end
        raise ArgumentError, "#{name}: task_claim renew: must be true or false, got #{renew.inspect}" unless [true, false].include?(renew)

        @task_claim_for = lease
        @task_claim_renew = renew
      end

      # Whether this job class renews its claims while perform runs.
      def task_claim_renew
        return @task_claim_renew if instance_variable_defined?(:@task_claim_renew)

        superclass.respond_to?(:task_claim_renew) ? superclass.task_claim_renew : true
      end

      # The lease (seconds) this job class claims its tasks for.
      def task_claim_for
        return @task_claim_for if instance_variable_defined?(:@task_claim_for)

        superclass.respond_to?(:task_claim_for) ? superclass.task_claim_for : DEFAULT_LEASE
      end

      # A subclass's own perform is wrapped too.
      def inherited(subclass)
        super
        subclass.prepend(Perform)
      end
    end

    # Wraps the job class's perform: claim, perform, complete (see Task::Job).
    module Perform
      # Takes the task (see Task::Job) and runs the job's perform on it under a claim.
      def perform(*args)
        # A subclass's perform calling super: the task is already claimed.
        return super if @task_job_running

        task, rest = ::Task::Job.task_and_rest(args)
        logger = respond_to?(:logger) ? self.logger : nil
        job = (respond_to?(:job_id) && job_id) || (respond_to?(:jid) && self.jid) || nil
        owner = [::Task::Task.default_owner, self.class.name, job].compact.join("/")
        begin
          @task_job_running = true
          ::Task::Job.run(task, for: self.class.task_claim_for, owner: owner, logger: logger,
                                renew: self.class.task_claim_renew) { super(task, *rest) }
        ensure
          @task_job_running = false
        end
      end
    end

    # The default perform: executes the task.
    def perform(task, *_rest)
      task.execute
    end
  end
end

# Task::Recovery comes with the job mixin (it loads this file too when required alone).
require_relative "recovery" unless defined?(::Task::Recovery)
