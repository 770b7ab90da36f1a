# frozen_string_literal: true

# What instrumentation costs: save + find + complete cycles with nobody listening against the
# same with one Task.subscribe block, alternated in rounds, on the memory store (where the
# call itself is cheapest, so the overhead shows most) and on the Cassandra node. Run by
# bin/bench after bench.rb, or alone: ruby -I lib bench/instrumentation.rb

require "securerandom"
require "task"

HOSTS = ENV.fetch("TASK_CASSANDRA_HOSTS", "127.0.0.1").split(",")
PORT = Integer(ENV.fetch("TASK_CASSANDRA_PORT", "9042"))
SCALE = Float(ENV.fetch("TASK_BENCH_SCALE", "1"))
ROUNDS = Integer(ENV.fetch("TASK_BENCH_ROUNDS", "5"))

class InstrumentedTask
  include Task::Task
end

def now
  Process.clock_gettime(Process::CLOCK_MONOTONIC)
end

def cycles(count)
  list = "instr-#{SecureRandom.hex(4)}"
  started = now
  count.times do |i|
    task = InstrumentedTask.new(task_list: list, id: i.to_s, data: { n: i })
    task.save
    Task::Task.find(list, task.id)
    task.complete
  end
  count / (now - started)
end

def median(xs)
  s = xs.sort
  s.size.odd? ? s[s.size / 2] : (s[s.size / 2 - 1] + s[s.size / 2]) / 2.0
end

{
  "memory" => [-> { Task::DataInterface::MemoryAdapter.new }, (100_000 * SCALE).round],
  "cassandra" => [-> { Task::DataInterface::CassandraAdapter.new(hosts: HOSTS, port: PORT, keyspace: "task_bench") },
                  (2_000 * SCALE).round]
}.each do |store, (make, count)|
  Task::Task.interface = Task::DataInterface::Interface.new(adapter: make.call)
  cycles([count / 10, 1].max) # warm up
  quiet = []
  heard = []
  events = 0
  ROUNDS.times do
    quiet << cycles(count)
    subscription = Task.subscribe { |_e| events += 1 }
    heard << cycles(count)
    Task.unsubscribe(subscription)
  end
  printf("%-12s %-9s %10.0f cycles/s nobody listening, %10.0f with one subscriber: ratio %.2f (%d events)\n",
         "instrument", store, median(quiet), median(heard), median(heard) / median(quiet), events)
end
