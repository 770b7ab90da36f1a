# frozen_string_literal: true

module Task
  # A source of tasks: anything with #each that includes this module can be combined with
  # others and used as an Enumerable.
  module Generator
    include ::Enumerable

    # A generator that yields this one's tasks, then each of the others'.
    def append(*generators)
      Generators::CombinedGenerator.new([self] + generators)
    end
  end

  module Generators
    # Equality by attribute value, like the value objects the original generators were.
    module ValueEquality
      def ==(other)
        other.class == self.class && other.to_h == to_h
      end
      alias eql? ==

      def hash
        [self.class, to_h].hash
      end
    end

    # Yields every task of each generator, in order.
    class CombinedGenerator
      include Generator
      include ValueEquality

      attr_reader :generators

      def initialize(generators)
        @generators = generators
        freeze
      end

      def each(&block)
        return enum_for(:each) unless block

        generators.each { |generator| generator.each(&block) }
        self
      end

      def to_h
        { generators: generators }
      end
    end

    # Yields the tasks stored for a task list: the leftovers of workers that did not finish.
    class ExistingTasks
      include Generator
      include ValueEquality

      attr_reader :task_list

      def initialize(task_list)
        @task_list = task_list
        freeze
      end

      def each(&block)
        return enum_for(:each) unless block

        ::Task::Task.all(task_list).each(&block)
        self
      end

      def to_h
        { task_list: task_list }
      end
    end
  end
end
