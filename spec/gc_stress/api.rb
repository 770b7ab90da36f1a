# frozen_string_literal: true

# Runs the API's calls with the garbage collector running at every allocation, in a small
# process of its own (a full GC of RSpec's heap at every allocation would take many minutes).
# A Ruby object the extension held without the GC knowing would be collected under it and show
# up as a crash or a wrong value. Prints one line per store; exits non-zero on any mismatch.
require "json"
require "securerandom"
require "task"

class DeleteItem
  include Task::Task

  data_attr_reader :item_id
end

class NotATask; end

def stressed
  GC.stress = true
  yield
ensure
  GC.stress = false
end

def check(what, actual, expected)
  return if actual == expected

  warn "#{what}: got #{actual.inspect}, expected #{expected.inspect}"
  exit 1
end

def exercise(name, adapter)
  Task::Task.interface = Task::DataInterface::Interface.new(adapter: adapter)
  list = "gc-#{SecureRandom.hex(4)}"
  data = { "name" => "Grüße", nested: { "a" => [1, 2.5, nil, true] }, big: 2**70 }
  found, all, copy, rows, stored, errors = stressed do
    tasks = 3.times.map { |i| DeleteItem.build(task_list: list, id: "t#{i}", item_id: i, **data) }
    tasks.each(&:save)
    stored = adapter.store_many([DeleteItem.build(task_list: list, id: "bulk", item_id: 9)])
    found = Task::Task.find(list, "t1")
    all = Task::Task.all(list).map(&:as_hash).to_a
    copy = Task::Task.from_hash(JSON.parse(JSON.generate(found.as_hash)))
    rows = adapter.rows(list).to_a
    tasks.first.complete
    errors = [
      (begin; DeleteItem.new(task_list: "", id: "x").save; rescue ArgumentError => e; e; end),
      (begin; DeleteItem.new(task_list: list, id: "x", data: { f: Float::NAN }).save; rescue Task::Error::BadData => e; e; end),
      (begin; Task::Task.from_hash(type: "NotATask"); rescue Task::Error::InvalidType => e; e; end)
    ]
    [found, all, copy, rows, stored, errors]
  end
  check("find", found.data, { item_id: 1, name: "Grüße", nested: { "a" => [1, 2.5, nil, true] }, big: 2**70 })
  check("from_hash", copy.attributes, found.attributes)
  check("all", all.map { |h| h[:id] }, %w[bulk t0 t1 t2])
  check("rows", rows.map { |r| r[:data] }.uniq.size, 4)
  check("store_many", stored, 1)
  check("errors", errors.map(&:class), [ArgumentError, Task::Error::BadData, Task::Error::InvalidType])
  check("complete", Task::Task.all(list).map(&:id).to_a, %w[bulk t1 t2])
  puts "#{name}: ok"
end

exercise("memory", Task::DataInterface::MemoryAdapter.new(page_size: 2))
if ENV["TASK_CASSANDRA_HOSTS"]
  options = { hosts: ENV["TASK_CASSANDRA_HOSTS"].split(","), port: Integer(ENV.fetch("TASK_CASSANDRA_PORT", "9042")),
              keyspace: "task_spec", page_size: 2 }
  exercise("cassandra", Task::DataInterface::CassandraAdapter.new(**options))
end
