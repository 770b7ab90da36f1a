# frozen_string_literal: true

require_relative "../task"

module Task
  # Test helpers: `require "task/testing"` gives each example (RSpec) or test (Minitest) a
  # fresh memory store as the default (Task::Task.interface, and any Interface.new without an
  # adapter), and puts back what was there afterwards; and a few matchers and assertions.
  #
  # RSpec: requiring it once RSpec is loaded (in spec_helper.rb or rails_helper.rb) includes
  # Task::Testing::RSpec in every example group; `config.include Task::Testing::RSpec` does
  # the same by hand. Matchers:
  #
  #   expect("uploads").to have_saved_task                        # any task in the list
  #   expect("uploads").to have_saved_task(FetchFile, id: "u1", data: { filename: "u1.txt" })
  #   expect(task).to be_completed_task                            # no longer stored
  #
  # Minitest (and ActiveSupport::TestCase): `include Task::Testing::Minitest` in the test
  # class. Assertions: assert_task_saved(list, klass = nil, id:, data:) and
  # assert_task_completed(task), refute_task_saved.
  module Testing
    class << self
      # Switches the default store to a fresh memory store (returned), remembering the
      # interface and adapter builder in place, for #stop. The default store is one for the
      # process: tests run in parallel threads (Minitest's parallelize_me!, Rails'
      # `parallelize(with: :threads)`) would share and wipe it, so a start while another
      # thread's test holds it raises; run them serially or in processes (Rails' default).
      def start
        if @saved && @thread && @thread != Thread.current && @thread.alive?
          raise ::Task::Error, "Task::Testing: another thread's test is using the default store; the test " \
                               "helpers give one store per process, so run these tests serially or in " \
                               "processes (parallelize(workers: N)), not in threads"
        end

        stop if @saved
        @thread = Thread.current
        interface_class = ::Task::DataInterface::Interface
        builder = interface_class.instance_variable_defined?(:@adapter_builder) ? interface_class.adapter_builder : nil
        @saved = [::Task::Task.instance_variable_get(:@interface), builder]
        store = ::Task::DataInterface::MemoryAdapter.new
        interface_class.adapter_builder = ->(_options) { store }
        ::Task::Task.interface = interface_class.new(adapter: store)
        @store = store
      end

      # Puts back the interface and adapter builder #start found.
      def stop
        return unless @saved

        interface, builder = @saved
        @saved = nil
        @store = nil
        ::Task::DataInterface::Interface.adapter_builder = builder
        ::Task::Task.interface = interface
        nil
      end

      # The memory store of the running example, or nil outside one.
      attr_reader :store

      # nil when `list` holds a task matching (of `klass`, with `id`, whose data holds
      # `data`'s pairs; each when given); otherwise what was found instead.
      def saved_task_mismatch(list, klass = nil, id: nil, data: nil)
        tasks = ::Task::Task.all(list).to_a
        return nil if tasks.any? { |t| task_matches?(t, klass, id, data) }

        wanted = describe_wanted(klass, id, data)
        found = if tasks.empty?
                  "it holds no task"
                else
                  shown = tasks.first(10).map { |t| "#{t.class.name} #{t.id.inspect} #{t.data.inspect}" }
                  "it holds #{tasks.size}: #{shown.join('; ')}#{tasks.size > 10 ? '; ...' : ''}"
                end
        "expected list #{list.to_s.inspect} to hold #{wanted}, but #{found}"
      end

      # nil when the list holds no task matching; otherwise what was found.
      def unsaved_task_mismatch(list, klass = nil, id: nil, data: nil)
        found = ::Task::Task.all(list).find { |t| task_matches?(t, klass, id, data) }
        return nil unless found

        "expected list #{list.to_s.inspect} not to hold #{describe_wanted(klass, id, data)}, " \
          "but it holds #{found.class.name} #{found.id.inspect} #{found.data.inspect}"
      end

      # nil when the task (a task, or [list, id]) is no longer stored; otherwise why not.
      def completed_mismatch(task)
        list, id = task.is_a?(Array) ? task : [task.task_list, task.id]
        stored = ::Task::Task.find(list, id)
        return nil unless stored

        info = ::Task::Task.interface.claim_info(list, id)
        claim = if info
                  ", attempts: #{info[:attempts]}, last error: #{info[:last_error].inspect}"
                else
                  ", never claimed"
                end
        "expected task #{list}/#{id} to be completed, but it is still stored (#{stored.class.name}#{claim})"
      end

      private

      def task_matches?(task, klass, id, data)
        return false if klass && !task.is_a?(klass)
        return false if id && task.id != id.to_s
        return false if data && !data.all? { |k, v| task.data.key?(k.to_sym) && task.data[k.to_sym] == v }

        true
      end

      def describe_wanted(klass, id, data)
        text = klass ? "a #{klass.name} task" : "a task"
        text += " with id #{id.to_s.inspect}" if id
        text += " whose data includes #{data.inspect}" if data
        text
      end
    end

    # A matcher built on one of Testing's *_mismatch checks (RSpec's matcher protocol).
    class Matcher
      # `check` (and `negated_check`, for `not_to`) takes the actual value and returns nil
      # when it passes, else the failure message.
      def initialize(description, check, negated_check = nil)
        @description = description
        @check = check
        @negated_check = negated_check
      end

      # What the matcher expects, for RSpec's descriptions.
      attr_reader :description

      # True when `check` passes on `actual`.
      def matches?(actual)
        @actual = actual
        @message = @check.call(actual)
        @message.nil?
      end

      # True when `negated_check` passes on `actual` (ArgumentError when there is none).
      def does_not_match?(actual)
        raise ArgumentError, "#{@description} cannot be negated" unless @negated_check

        @actual = actual
        @message = @negated_check.call(actual)
        @message.nil?
      end

      # What `check` said was wrong.
      def failure_message
        @message
      end

      # What `negated_check` said was wrong.
      def failure_message_when_negated
        @message
      end
    end

    # RSpec: the store hooks and matchers (included in every example group when RSpec is
    # loaded before task/testing; else `config.include Task::Testing::RSpec`).
    module RSpec
      # Adds the store hooks to an example group (once, however often it is included).
      def self.included(group)
        return unless group.respond_to?(:before) && !group.instance_variable_defined?(:@task_testing)

        group.instance_variable_set(:@task_testing, true)
        group.before { ::Task::Testing.start }
        group.after { ::Task::Testing.stop }
      end

      # Passes when the list (the actual value) holds a task, of `klass`, with `id`, whose
      # data includes `data` (each when given). Negated: holds no such task.
      def have_saved_task(klass = nil, id: nil, data: nil) # rubocop:disable Naming/PredicateName
        Matcher.new(
          "have saved a task",
          ->(list) { ::Task::Testing.saved_task_mismatch(list, klass, id: id, data: data) },
          ->(list) { ::Task::Testing.unsaved_task_mismatch(list, klass, id: id, data: data) }
        )
      end

      # Passes when the task (or [list, id]) is no longer stored: it was completed.
      def be_completed_task
        Matcher.new(
          "be completed",
          ->(task) { ::Task::Testing.completed_mismatch(task) },
          lambda do |task|
            list, id = task.is_a?(Array) ? task : [task.task_list, task.id]
            ::Task::Task.find(list, id) ? nil : "expected task #{list}/#{id} to be still stored, but it is not"
          end
        )
      end
    end

    # Minitest (Minitest::Test, ActiveSupport::TestCase): include it in the test class.
    module Minitest
      # A fresh memory store before each test.
      def before_setup
        super
        ::Task::Testing.start
      end

      # The store in place before the test, back.
      def after_teardown
        ::Task::Testing.stop
        super
      end

      # Asserts that `list` holds a task, of `klass`, with `id`, whose data includes `data`
      # (each when given).
      def assert_task_saved(list, klass = nil, id: nil, data: nil, message: nil)
        mismatch = ::Task::Testing.saved_task_mismatch(list, klass, id: id, data: data)
        assert(mismatch.nil?, message || mismatch)
      end

      # Asserts that `list` holds no such task.
      def refute_task_saved(list, klass = nil, id: nil, data: nil, message: nil)
        mismatch = ::Task::Testing.unsaved_task_mismatch(list, klass, id: id, data: data)
        assert(mismatch.nil?, message || mismatch)
      end

      # Asserts that the task (or [list, id]) is no longer stored: it was completed.
      def assert_task_completed(task, message: nil)
        mismatch = ::Task::Testing.completed_mismatch(task)
        assert(mismatch.nil?, message || mismatch)
      end
    end
  end
end

if defined?(RSpec) && RSpec.respond_to?(:configure)
  RSpec.configure { |config| config.include Task::Testing::RSpec }
end
