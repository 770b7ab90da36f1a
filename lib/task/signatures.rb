# frozen_string_literal: true

# Methods defined in the extension have no parameter names: irb, Method#inspect and
# Method#parameters show them as `save(*)` or `find(_, _)`. Each public one is renamed here
# to a private `native_NAME` and called from a Ruby method of the same name whose parameters
# are those documented (lib/task/native_docs.rb, sig/task.rbs). The wrappers only pass their
# arguments on: the extension still checks them, so its errors are unchanged. (RDoc documents
# the methods from lib/task/native_docs.rb, not from here.)
#
# :stopdoc:
module Task
  # The helper that does the renaming; nothing to call from applications.
  module Signatures
    # Methods of a store's own adapter class that take an options Hash or keywords
    # (CassandraAdapter's create_schema and tune_table, and any store's that has them): each
    # adapter class gets a wrapper for those it defines.
    ADAPTER_OPTIONS_METHODS = %i[create_schema tune_table].freeze

    # Every store's adapter class (the subclasses of NativeAdapter the extension defines).
    def self.adapter_classes
      data_interface = ::Task::DataInterface
      data_interface.constants.sort.filter_map do |name|
        klass = data_interface.const_get(name)
        klass if klass.is_a?(Class) && klass < data_interface::NativeAdapter
      end
    end

    # Makes +name+ of +owner+ private under the name native_NAME.
    def self.rename(owner, *names)
      names.each do |name|
        owner.send(:alias_method, :"native_#{name}", name)
        owner.send(:private, :"native_#{name}")
      end
    end

    # The arguments for a native method taking an optional options Hash, from task_rb's
    # positional Hash and/or keywords: none when there are no options.
    def self.options(options, keywords)
      if keywords.empty?
        options.nil? ? [] : [options]
      elsif options.nil?
        [keywords]
      else
        [options, keywords] # the extension names the wrong number of arguments
      end
    end
  end

  module Task
    Signatures.rename(self, :save, :execute)

    # See lib/task/native_docs.rb for what these do.
    def save(options = nil, **keywords)
      if keywords.empty?
        native_save(options)
      else
        native_save(*Signatures.options(options, keywords))
      end
    end

    def execute(options = {})
      native_execute(options)
    end

    Signatures.rename(singleton_class, :find, :from_hash, :from_json, :all)

    class << self
      def find(task_list, id)
        native_find(task_list, id)
      end

      def from_hash(hash)
        native_from_hash(hash)
      end

      def from_json(text)
        native_from_json(text)
      end

      def all(task_list, options = nil, **keywords)
        native_all(task_list, *Signatures.options(options, keywords))
      end
    end

    module ClassMethods
      Signatures.rename(self, :build, :create)

      # +options+: task_rb's positional Hash; or the same as keywords.
      def build(options = nil, **attributes)
        # Written out rather than through Signatures.options: build is the hot one.
        if attributes.empty?
          native_build(options)
        elsif options.nil?
          native_build(attributes)
        else
          native_build(options, attributes)
        end
      end

      def create(options = nil, **attributes)
        native_create(*Signatures.options(options, attributes))
      end
    end
  end

  module DataInterface
    class Interface
      Signatures.rename(self, :store, :all, :find, :delete)

      def store(task, options = nil, **keywords)
        native_store(task, *Signatures.options(options, keywords))
      end

      def all(task_list, options = nil, **keywords)
        native_all(task_list, *Signatures.options(options, keywords))
      end

      def find(task_list, id)
        native_find(task_list, id)
      end

      def delete(task_list, id)
        native_delete(task_list, id)
      end
    end

    class NativeAdapter
      Signatures.rename(self, :count, :delete_list, :rows, :store_row, :claims, :claim_info, :retry_task)

      def claims(task_list)
        native_claims(task_list)
      end

      def claim_info(task_list, id)
        native_claim_info(task_list, id)
      end

      def retry_task(task_list, id)
        native_retry_task(task_list, id)
      end

      def count(task_list)
        native_count(task_list)
      end

      def delete_list(task_list)
        native_delete_list(task_list)
      end

      def rows(task_list)
        native_rows(task_list)
      end

      def store_row(row)
        native_store_row(row)
      end
    end

    Signatures.adapter_classes.each do |adapter_class|
      names = Signatures::ADAPTER_OPTIONS_METHODS & adapter_class.public_instance_methods(false)
      next if names.empty?

      Signatures.rename(adapter_class, *names)
      names.each do |name|
        adapter_class.define_method(name) do |options = nil, **keywords|
          send(:"native_#{name}", *Signatures.options(options, keywords))
        end
      end
    end
  end
end
