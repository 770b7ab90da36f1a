# frozen_string_literal: true

# Read paths measured in one run (no Cassandra needed unless TASK_CASSANDRA_HOSTS is set):
#   unloaded  rows of a class this process has not loaded, through all(on_bad_row:), against
#             the same rows of a loaded class (rows/s and their ratio)
#   nested    all/find/from_json of tasks whose data holds nested hashes
# Run: ruby -Ilib bench/read_paths.rb [rows]
require "task"
require "json"
require "securerandom"

ROWS = Integer(ARGV[0] || 20_000)

class LoadedJob
  include Task::Task
end

def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

def rate(count)
  best = 0
  3.times do
    started = now
    yield
    best = [best, count / (now - started)].max
  end
  best
end

def stores
  list = [["memory", Task::DataInterface::MemoryAdapter.new]]
  if (hosts = ENV["TASK_CASSANDRA_HOSTS"])
    a = Task::DataInterface::CassandraAdapter.new(hosts: hosts.split(","), keyspace: "task_spec")
    a.create_schema
    list << ["cassandra", a]
  end
  list
end

stores.each do |name, adapter|
  Task::Task.interface = Task::DataInterface::Interface.new(adapter: adapter)
  loaded = "bench-loaded-#{SecureRandom.hex(4)}"
  unloaded = "bench-unloaded-#{SecureRandom.hex(4)}"
  nested = "bench-nested-#{SecureRandom.hex(4)}"
  data = JSON.generate("n" => 1, "s" => "payload")
  deep = JSON.generate("n" => 1, "opts" => { "retries" => 3, "list" => [{ "a" => 1 }, { "b" => { "c" => 2 } }] })
  ROWS.times.each_slice(1000) do |ids|
    adapter.store_many(ids.map { |i| LoadedJob.new(task_list: loaded, id: format("%06d", i), data: JSON.parse(data)) })
    adapter.store_many(ids.map { |i| LoadedJob.new(task_list: nested, id: format("%06d", i), data: JSON.parse(deep)) })
    ids.each { |i| adapter.store_row(task_list: unloaded, id: format("%06d", i), type: "Unloaded::Job", data: data) }
  end
  bad = 0
  handler = ->(_row, _e) { bad += 1 }
  r_loaded = rate(ROWS) { Task::Task.all(loaded, on_bad_row: handler).each {} }
  r_unloaded = rate(ROWS) { Task::Task.all(unloaded, on_bad_row: handler).each {} }
  printf("%-9s all(on_bad_row:) %d rows: loaded %.0f rows/s, unloaded %.0f rows/s, unloaded/loaded %.2f\n",
         name, ROWS, r_loaded, r_unloaded, r_unloaded / r_loaded)
  r_nested = rate(ROWS) { Task::Task.all(nested).each {} }
  printf("%-9s all of nested data: %.0f rows/s (flat data %.0f rows/s)\n", name, r_nested, r_loaded)
  finds = [ROWS, 2000].min
  r_find = rate(finds) { finds.times { |i| Task::Task.find(nested, format("%06d", i)) } }
  printf("%-9s find of nested data: %.0f/s\n", name, r_find)
  task = Task::Task.find(nested, "000001")
  r_json = rate(50_000) { 50_000.times { Task::Task.from_json(task.to_json) } }
  printf("%-9s to_json+from_json of nested data: %.0f/s\n", name, r_json)
  [loaded, unloaded, nested].each { |l| adapter.delete_list(l) }
end
