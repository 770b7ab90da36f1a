# frozen_string_literal: true

class FetchFile
  include Task::Task

  data_attr_reader :external_host
  data_attr_reader :filename
end

module Jobs
  module Cleanup
    class DeleteItem
      include Task::Task

      data_attr_reader :item_id

      def execute(opts = {})
        "deleted #{item_id}#{opts[:suffix]}"
      end
    end
  end
end

class FailingTask
  include Task::Task

  def execute(_opts = {})
    raise "boom #{id}"
  end
end

class NotATask
  def initialize(*); end
end

# A store written in plain Ruby: any object with store/all/find/delete is an adapter.
class HashAdapter
  attr_reader :rows

  def initialize
    @rows = {}
  end

  def store(task)
    (@rows[task.task_list] ||= {})[task.id] = task.as_hash
  end

  def all(task_list)
    (@rows[task_list] || {}).values.map { |h| Task::Task.from_hash(h) }
  end

  def find(task_list, id)
    h = (@rows[task_list] || {})[id]
    h && Task::Task.from_hash(h)
  end

  def delete(task_list, id)
    (@rows[task_list] || {}).delete(id)
  end
end
