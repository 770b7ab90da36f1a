# frozen_string_literal: true

# What one view of Task::Web's index and stale pages costs on a large store: 337 lists (300 of
# 5,000 tasks, one of 200,000, 36 of 100) in a keyspace of their own, built once and reused.
#
#   ruby -Ilib bench/web_index.rb build   # once (under a minute on one local node)
#   ruby -Ilib bench/web_index.rb         # GET / and GET /lists/big/stale: time and rows read
#
# TASK_CASSANDRA_HOSTS picks the node (127.0.0.1); TASK_BENCH_KEYSPACE the keyspace
# (task_web_bench). Rows read are those the adapter's scans returned (all.task events), the ids
# count read, the list names, claim rows and finds.
require "task"
require "task/web"
require "rack/mock"

class BenchTask
  include Task::Task
end

hosts = ENV.fetch("TASK_CASSANDRA_HOSTS", "127.0.0.1").split(",")
keyspace = ENV.fetch("TASK_BENCH_KEYSPACE", "task_web_bench")
adapter = Task::DataInterface::CassandraAdapter.new(hosts: hosts, keyspace: keyspace)
Task::Task.interface = Task::DataInterface::Interface.new(adapter: adapter)
shape = [["big", 200_000]] + (0...300).map { |i| [format("l%03d", i), 5_000] } +
        (0...36).map { |i| [format("s%02d", i), 100] }
# TASK_BENCH_MILLION=1: a 338th list of 1,000,000 tasks besides.
shape << ["million", 1_000_000] if ENV["TASK_BENCH_MILLION"] == "1"

if ARGV.first == "build"
  adapter.create_schema
  shape.each do |list, size|
    have = adapter.count(list)
    next if have == size

    (have...size).each_slice(20_000) do |slice|
      adapter.store_many(slice.map { |i| BenchTask.build(task_list: list, id: format("%06d", i), n: i, file: "f#{i}.txt") })
    end
    warn "#{list}: #{size}"
  end
  exit
end

rows = 0
Task.subscribe { |e| rows += e.payload[:count].to_i if e.name == "all.task" }
# Reads that publish no event: a count reads every id of the list, lists every name, claims
# every claim row of the list, find one row.
adapter.singleton_class.prepend(Module.new do
  define_method(:count) { |list| super(list).tap { |n| rows += n } }
  define_method(:lists) { super().map { |name| rows += 1; name } }
  define_method(:claims) { |list| super(list).tap { |c| rows += c.size } }
  define_method(:find) { |list, id| super(list, id).tap { rows += 1 } }
end)
app = Task::Web.new(adapter: adapter)
[["/", "index"], ["/lists/big/stale?older_than=0", "stale (every task old enough)"],
 ["/lists/big/stale?older_than=#{10 * 365 * 86_400}", "stale (none old enough)"], ["/lists/big", "list page"]].each do |path, name|
  rows = 0
  t = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  status, = app.call(Rack::MockRequest.env_for(path))
  took = Process.clock_gettime(Process::CLOCK_MONOTONIC) - t
  puts format("%-32s %s %6.2f s  %9d rows read", name, status, took, rows)
end
