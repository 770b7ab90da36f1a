# frozen_string_literal: true

# The fibers workload: tasks saved from 8 and from 64 fibers on one Ruby thread under Async's
# Fiber scheduler, against raw Rust doing the same inserts from as many futures on one runtime
# (bench/raw/src/bin/raw-callers.rs), with 8 Ruby threads saving (the threads workload) in the
# same run. Alternating rounds, medians, as bench/bench.rb does.
#
#   ruby -I lib bench/fibers.rb        (bin/bench builds raw-callers; a node must be running)
#
# TASK_BENCH_SCALE and TASK_BENCH_ROUNDS as for bin/bench. Prints a table; with
# TASK_BENCH_JSON=path writes the figures there as JSON.

require "async"
require "json"
require "securerandom"
require "task"

ROOT = File.expand_path("..", __dir__)
HOSTS = ENV.fetch("TASK_CASSANDRA_HOSTS", "127.0.0.1").split(",")
PORT = Integer(ENV.fetch("TASK_CASSANDRA_PORT", "9042"))
KEYSPACE = "task_bench"
TARGET = ENV.fetch("CARGO_TARGET_DIR", File.join(ROOT, "target"))
RAW_CALLERS = File.join(TARGET, "release", "raw-callers")
SCALE = Float(ENV.fetch("TASK_BENCH_SCALE", "1"))
ROUNDS = Integer(ENV.fetch("TASK_BENCH_ROUNDS", "5"))

class BenchTask
  include Task::Task

  data_attr_reader :n
  data_attr_reader :s
end

def now
  Process.clock_gettime(Process::CLOCK_MONOTONIC)
end

def median(rates)
  sorted = rates.sort
  mid = sorted.size / 2
  sorted.size.odd? ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2.0
end

def data(i)
  { n: i, s: "payload #{i}" }
end

# raw Rust: `callers` futures saving `count` tasks, on the current-thread and the multi-thread
# runtime; the faster is the reference.
def raw(callers, count)
  %w[current multi].map do |runtime|
    out = IO.popen({ "RAW_RUNTIME" => runtime },
                   [RAW_CALLERS, "#{HOSTS.first}:#{PORT}", KEYSPACE, callers.to_s, count.to_s], &:read)
    raise "raw-callers #{callers} (#{runtime}) failed" unless $?.success?

    r = JSON.parse(out)
    r["ops"] / r["seconds"]
  end.max
end

# `fibers` fibers on this thread under Async, each saving count / fibers tasks.
def fibers_rate(adapter, fibers, count)
  list = "fib-#{SecureRandom.hex(4)}"
  started = now
  Async do |task|
    fibers.times.map do |f|
      task.async do
        (count / fibers).times { |i| BenchTask.new(task_list: list, id: "#{f}-#{i}", data: data(i)).save }
      end
    end.each(&:wait)
  end
  rate = (count / fibers * fibers) / (now - started)
  adapter.delete_list(list)
  rate
end

# 8 Ruby threads, each saving count / 8 tasks (no scheduler: the threads workload).
def threads_rate(adapter, count)
  list = "thr-#{SecureRandom.hex(4)}"
  started = now
  8.times.map do |t|
    Thread.new do
      (count / 8).times { |i| BenchTask.new(task_list: list, id: "#{t}-#{i}", data: data(i)).save }
    end
  end.each(&:join)
  rate = (count / 8 * 8) / (now - started)
  adapter.delete_list(list)
  rate
end

adapter = Task::DataInterface::CassandraAdapter.new(hosts: HOSTS, port: PORT, keyspace: KEYSPACE)
adapter.create_schema
Task::Task.interface = Task::DataInterface::Interface.new(adapter: adapter)
count = [(16_000 * SCALE).round, 64].max

workloads = {
  "fibers8" => [-> { fibers_rate(adapter, 8, count) }, -> { raw(8, count) }],
  "fibers64" => [-> { fibers_rate(adapter, 64, count) }, -> { raw(64, count) }],
  "threads8" => [-> { threads_rate(adapter, count) }, -> { raw(8, count) }]
}
rates = workloads.keys.to_h { |k| [k, { gem: [], raw: [] }] }
# One round not counted (connections, prepared statements, the node's caches), then ROUNDS
# rounds, each workload and its reference alternating.
(ROUNDS + 1).times do |round|
  workloads.each do |name, (gem, ref)|
    g = gem.call
    r = ref.call
    next if round.zero?

    rates[name][:gem] << g
    rates[name][:raw] << r
  end
end

puts format("%-10s %10s %12s %7s", "workload", "gem /s", "raw Rust /s", "ratio")
results = rates.map do |name, r|
  gem_rate = median(r[:gem])
  raw_rate = median(r[:raw])
  puts format("%-10s %10.0f %12.0f %7.2f", name, gem_rate, raw_rate, gem_rate / raw_rate)
  { workload: name, gem_rate: gem_rate.round(1), reference_rate: raw_rate.round(1), ratio: (gem_rate / raw_rate).round(3),
    gem_rounds: r[:gem].map { |x| x.round(1) }, reference_rounds: r[:raw].map { |x| x.round(1) } }
end
f8 = results.find { |r| r[:workload] == "fibers8" }
t8 = results.find { |r| r[:workload] == "threads8" }
puts format("fibers8 against threads8, same run: %.2fx the rate; ratio to raw %.2f against %.2f (target >= 0.8)",
            f8[:gem_rate] / t8[:gem_rate], f8[:ratio], t8[:ratio])
File.write(ENV["TASK_BENCH_JSON"], JSON.pretty_generate(results)) if ENV["TASK_BENCH_JSON"]
