# frozen_string_literal: true

require_relative "indifferent_hash"

module Task
  #--
  # The mixin itself is native (see ext/task_native/src/task.rs); this is the part that
  # defines methods at runtime, which Ruby does best.
  module Task
    module ClassMethods
      # Defines a reader returning data[name]: `data_attr_reader :filename`.
      def data_attr_reader(*names)
        names.each do |name|
          key = name.to_sym
          define_method(key) { data[key] }
        end
        nil
      end
    end
  end
end
