# frozen_string_literal: true

module Task
  # Looking at lists as an operator does: how many tasks one holds, which lists there are.
  module Task
    # How many tasks the list holds, counted a page at a time (bounded memory at any size).
    def self.count(task_list)
      interface.count(task_list)
    end

    # The names of the lists that hold tasks, lazily, a page at a time.
    def self.lists
      interface.lists
    end
  end

  module DataInterface
    class Interface
      def count(task_list)
        adapter.count(task_list)
      end

      def lists
        adapter.lists
      end
    end
  end
end
