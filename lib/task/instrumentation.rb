# frozen_string_literal: true

module Task
  # Events for what the adapters do: `save.task`, `find.task`, `complete.task`, `all.task`
  # (one per page a scan reads), `store_many.task`, `delete_many.task`, `claim.task`,
  # `renew.task`, `release.task`. Each carries a payload (task_list, id or count, the outcome
  # where there is one, and for single-task calls the attempts its request took) and how long
  # it took; an event for a call that raised has the exception as payload[:error]. They go to ActiveSupport::Notifications subscribers when
  # ActiveSupport is loaded, and to blocks given to `Task.subscribe`. Nobody listening, a
  # call costs one check.
  module Instrumentation
    Event = Struct.new(:name, :payload, :duration) do
      def to_s
        format("%s %.3f ms %p", name, duration * 1000, payload)
      end
    end

    @subscribers = [].freeze
    @lock = Mutex.new

    class << self
      attr_reader :subscribers

      def subscribe(block)
        raise ArgumentError, "Task.subscribe needs a block (it is given each event)" unless block

        @lock.synchronize { @subscribers = (@subscribers + [block]).freeze }
        refresh
        block
      end

      def unsubscribe(block)
        @lock.synchronize { @subscribers = (@subscribers - [block]).freeze }
        refresh
        nil
      end

      # Whether anyone listens to events of this name.
      def listening?(name)
        !@subscribers.empty? || active_support?(name)
      end

      # Scans publish their pages only while someone may listen (ActiveSupport may gain
      # subscribers at any time once it is loaded).
      def refresh
        self.native_events = !@subscribers.empty? || !active_support.nil?
      end

      # Runs the block as the call the event reports. With `attempts`, the payload gets how
      # many attempts the call's request took (1 unless it was retried).
      def instrument(name, payload, attempts: false)
        to_active_support = active_support?(name)
        subscribers = @subscribers
        return yield if subscribers.empty? && !to_active_support

        started = clock
        reset_attempts if attempts
        begin
          if to_active_support
            active_support.instrument(name, payload) { counted(payload, attempts) { yield } }
          else
            counted(payload, attempts) { yield }
          end
        rescue Exception => e # rubocop:disable Lint/RescueException
          payload[:error] = e
          raise
        ensure
          deliver(subscribers, name, payload, clock - started)
        end
      end

      # Called by a scan for each page it read.
      def publish_page(task_list, count, seconds, error)
        payload = { task_list: task_list, count: count }
        payload[:error] = error if error
        if active_support?("all.task")
          finished = Time.now
          active_support.publish("all.task", finished - seconds, finished, object_id.to_s, payload)
        end
        deliver(@subscribers, "all.task", payload, seconds)
      end

      private

      # The attempts are noted by the extension on the calling thread as each request ends.
      def counted(payload, attempts)
        yield
      ensure
        payload[:attempts] = [self.attempts, 1].max if attempts
      end

      def deliver(subscribers, name, payload, seconds)
        return if subscribers.empty?

        event = Event.new(name, payload, seconds)
        subscribers.each do |s|
          s.call(event)
        rescue StandardError => e
          warn "task: a Task.subscribe block raised #{e.class}: #{e.message}"
        end
      end

      def active_support
        ::ActiveSupport::Notifications if defined?(::ActiveSupport::Notifications)
      end

      def active_support?(name)
        n = active_support
        !n.nil? && n.notifier.listening?(name)
      end

      def clock
        Process.clock_gettime(Process::CLOCK_MONOTONIC)
      end
    end

    # Wraps the adapters' calls (both adapters share these native methods).
    module Adapter
      def store(task, *rest, **options)
        return super unless Instrumentation.listening?("save.task")

        Instrumentation.instrument("save.task", key_of(task), attempts: true) { super }
      end

      def find(task_list, id)
        return super unless Instrumentation.listening?("find.task")

        payload = { task_list: task_list, id: id }
        Instrumentation.instrument("find.task", payload, attempts: true) { super.tap { |t| payload[:found] = !t.nil? } }
      end

      def delete(task_list, id)
        return super unless Instrumentation.listening?("complete.task")

        Instrumentation.instrument("complete.task", { task_list: task_list, id: id }, attempts: true) { super }
      end

      def all(*args, **options)
        Instrumentation.refresh
        super
      end

      def store_many(tasks, *rest, **options)
        return super unless Instrumentation.listening?("store_many.task")

        Instrumentation.instrument("store_many.task", { count: tasks.respond_to?(:size) ? tasks.size : nil }) { super }
      end

      def delete_many(items, *rest, **options)
        return super unless Instrumentation.listening?("delete_many.task")

        Instrumentation.instrument("delete_many.task", { count: items.respond_to?(:size) ? items.size : nil }) { super }
      end

      %w[claim renew release].each do |verb|
        name = "#{verb}.task"
        define_method(verb) do |task_list, id, seconds, owner|
          return super(task_list, id, seconds, owner) unless Instrumentation.listening?(name)

          payload = { task_list: task_list, id: id, owner: owner }
          Instrumentation.instrument(name, payload, attempts: true) do
            super(task_list, id, seconds, owner).tap { |r| payload[:result] = r }
          end
        end
      end

      private

      def key_of(task)
        return {} unless task.respond_to?(:task_list) && task.respond_to?(:id)

        { task_list: task.task_list, id: task.id }
      end
    end

    DataInterface::NativeAdapter.prepend(Adapter)
    refresh
  end

  # Calls the block with each event (a Task::Instrumentation::Event: name, payload, duration
  # in seconds) until `Task.unsubscribe` is given what this returned.
  def self.subscribe(&block)
    Instrumentation.subscribe(block)
  end

  def self.unsubscribe(subscription)
    Instrumentation.unsubscribe(subscription)
  end
end
