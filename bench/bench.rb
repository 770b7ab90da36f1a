# frozen_string_literal: true

# The gem against the same work done by the scylla driver directly (bench/raw), on the same
# Cassandra node, in the same run: each workload prints the gem's rate, the reference rate and
# their ratio. Run it with bin/bench; results go to bench/results.json.

require "json"
require "rbconfig"
require "securerandom"
require "task"

ROOT = File.expand_path("..", __dir__)
HOSTS = ENV.fetch("TASK_CASSANDRA_HOSTS", "127.0.0.1").split(",")
PORT = Integer(ENV.fetch("TASK_CASSANDRA_PORT", "9042"))
KEYSPACE = "task_bench"
RAW = File.join(ENV.fetch("CARGO_TARGET_DIR", File.join(ROOT, "target")), "release", "raw-bench")
SCALE = Float(ENV.fetch("TASK_BENCH_SCALE", "1"))

class BenchTask
  include Task::Task

  data_attr_reader :n
  data_attr_reader :s
end

# The plain-Ruby baseline for workload 5: the same attributes and coercions, written the
# obvious way.
class PlainTask
  attr_accessor :task_list, :id, :data

  def initialize(task_list: nil, id: nil, data: {})
    @task_list = task_list&.to_s
    @id = id&.to_s
    @data = data.to_h.transform_keys { |k| k.is_a?(String) ? k.to_sym : k }
  end

  def self.build(options)
    options = options.dup
    task_list = options.delete(:task_list)
    id = options.delete(:id) || SecureRandom.hex
    new(task_list: task_list, id: id, data: options)
  end

  def as_hash
    { task_list: task_list, id: id, data: data, type: self.class.name }
  end

  def self.from_hash(hash)
    hash = hash.transform_keys(&:to_sym)
    Object.const_get(hash.delete(:type)).new(**hash)
  end
end

def now
  Process.clock_gettime(Process::CLOCK_MONOTONIC)
end

def rss_mb(field = "VmRSS")
  File.read("/proc/self/status")[/^#{field}:\s+(\d+)/, 1].to_i / 1024.0
end

def n(count)
  [(count * SCALE).round, 1].max
end

# One run of bench/raw on a multi-thread and on a current-thread tokio runtime: the rate of
# each, by runtime (which one is faster depends on the workload).
def raw(workload, count, list = nil, runtimes: %w[multi current])
  runtimes.to_h do |runtime|
    out = IO.popen({ "RAW_RUNTIME" => runtime }, [RAW, "#{HOSTS.first}:#{PORT}", KEYSPACE, workload, count.to_s, *list],
                   &:read)
    raise "raw-bench #{workload} (#{runtime} runtime) failed" unless $?.success?

    r = JSON.parse(out)
    [runtime, r["ops"] / r["seconds"]]
  end
end

def median(rates)
  sorted = rates.sort
  mid = sorted.size / 2
  sorted.size.odd? ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2.0
end

def adapter(**options)
  Task::DataInterface::CassandraAdapter.new(hosts: HOSTS, port: PORT, keyspace: KEYSPACE, **options)
end

def data(i)
  { n: i, s: "payload #{i}" }
end

# TASK_BENCH_ONLY=bulk,objects runs only the workloads whose names start with one of those.
ONLY = ENV["TASK_BENCH_ONLY"]&.split(",")
def run?(name)
  ONLY.nil? || ONLY.any? { |o| name.start_with?(o) }
end

results = []
seq_save_rate = nil
# `m`: what `rounds` measured for one workload.
record = lambda do |name, m, target, unit, extra = {}|
  gem_rate = m[:gem]
  ref_rate = m[:reference]
  ratio = gem_rate / ref_rate
  results << { workload: name, unit: unit, gem_rate: gem_rate.round(1), reference_rate: ref_rate.round(1),
               ratio: ratio.round(3), target: target, met: ratio >= target,
               gem_rounds: m[:gem_rounds].map { |r| r.round(1) },
               reference_rounds: m[:reference_rounds].transform_values { |rs| rs.map { |r| r.round(1) } } }
             .merge(extra)
  printf("%-12s %12.0f %12.0f %8.2f   (target >= %.1f%s)%s\n", name, gem_rate, ref_rate, ratio, target,
         extra[:note] ? ", #{extra[:note]}" : "", ratio >= target ? "" : "  NOT MET")
  by_runtime = m[:reference_rounds]
  if by_runtime.key?("multi")
    puts format("%-12s raw on a multi-thread runtime %.0f/s (ratio %.2f), current-thread %.0f/s (ratio %.2f)", "",
                median(by_runtime["multi"]), gem_rate / median(by_runtime["multi"]),
                median(by_runtime["current"]), gem_rate / median(by_runtime["current"]))
  end
end

# The Cassandra node is needed unless only SQLite workloads were asked for.
CASSANDRA = %w[scan count sequential threads bulk bulk-batched claim each objects].any? { |w| run?(w) }
if CASSANDRA
  a = adapter
  a.create_schema
  Task::Task.interface = Task::DataInterface::Interface.new(adapter: a)
  puts format("%-12s %12s %12s %8s", "workload", "gem /s", "raw Rust /s", "ratio")

  # Warm both sides up (connections, prepared statements, JIT-free but cache-warm paths).
  warm = "warm-#{SecureRandom.hex(4)}"
  200.times { |i| BenchTask.new(task_list: warm, id: i.to_s, data: data(i)).tap(&:save).complete }
  raw("sequential", 200)
end

# Each workload runs the gem and the reference alternately, ROUNDS times each, and compares
# medians: on a shared machine single runs measure the neighbours (and Cassandra's own
# compactions and JVM pauses), and alternating keeps either side from always going first. The
# reference is the faster runtime's median. Every counted round's rate goes to results.json.
ROUNDS = Integer(ENV.fetch("TASK_BENCH_ROUNDS", "5"))
def rounds(gem, ref, warmup: 1, rounds: ROUNDS)
  gem_rates = []
  ref_rates = Hash.new { |h, k| h[k] = [] }
  # Rounds first that are not counted: a node just started (or still compacting after the
  # previous workload) is slower for whichever side happens to come first, and Ruby's heap
  # grows to its working size over the first scans.
  warmup.times do
    gem.call
    ref.call
  end
  rounds.times do
    gem_rates << gem.call
    r = ref.call
    (r.is_a?(Hash) ? r : { "reference" => r }).each { |k, v| ref_rates[k] << v }
  end
  { gem: median(gem_rates), reference: ref_rates.values.map { |rs| median(rs) }.max,
    gem_rounds: gem_rates, reference_rounds: ref_rates }
end

# 4. scan: Task::Task.all over a 100,000-task list, and the memory it takes. Run first, while
# the Ruby heap is still small, so the RSS figure is not hidden by room earlier work made.
def scan_once(list, count)
  GC.start
  File.write("/proc/self/clear_refs", "5") # reset the peak (VmHWM) to the current RSS
  before = rss_mb
  started = now
  seen = 0
  Task::Task.all(list).each { |t| seen += 1 if t.n }
  rate = seen / (now - started)
  growth = rss_mb("VmHWM") - before
  raise "scan saw #{seen} of #{count}" unless seen == count

  [rate, growth]
end

# Saves +count+ tasks to a new list of +adapter+ (the interface's: `save`) from 8 Ruby threads;
# saves a second. The list is deleted after.
def threads_rate(adapter, count)
  list = "thr-#{SecureRandom.hex(4)}"
  started = now
  8.times.map do |t|
    Thread.new do
      (count / 8).times { |i| BenchTask.new(task_list: list, id: "#{t}-#{i}", data: data(i)).save }
    end
  end.each(&:join)
  rate = count / (now - started)
  adapter.delete_list(list)
  rate
end

# Claims and completes +count+ tasks stored in a new list of +adapter+, from +threads+ Ruby
# threads (each its own owner); claims a second. The list is deleted after.
def claim_rate(adapter, name, threads, count)
  list = "#{name}-#{SecureRandom.hex(4)}"
  tasks = Array.new(count) { |i| BenchTask.new(task_list: list, id: format("%07d", i), data: data(i)) }
  adapter.store_many(tasks)
  started = now
  threads.times.map do |t|
    Thread.new do
      owner = "bench:#{Process.pid}:#{t}"
      tasks.each_with_index do |task, i|
        next unless i % threads == t

        task.claim(for: 60, owner: owner) or raise "claim of #{task.id} refused"
        task.complete
      end
    end
  end.each(&:join)
  rate = count / (now - started)
  adapter.delete_list(list)
  rate
end

# Runs claim_each over +count+ tasks stored in a new list of +adapter+, `batch:` +batch+, from
# +threads+ Ruby threads (each its own owner, each walking the whole list once); tasks run a
# second. Every task must have run: the list is then empty.
def claim_each_rate(adapter, name, batch, threads, count)
  list = "#{name}-#{SecureRandom.hex(4)}"
  adapter.store_many(Array.new(count) { |i| BenchTask.new(task_list: list, id: format("%07d", i), data: data(i)) })
  ran = Queue.new
  started = now
  threads.times.map do |t|
    Thread.new do
      ran << Task::Task.claim_each(list, for: 60, batch: batch, owner: "bench:#{Process.pid}:#{t}") { nil }
    end
  end.each(&:join)
  rate = count / (now - started)
  total = Array.new(ran.size) { ran.pop }.sum
  raise "claim_each #{name} ran #{total} of #{count} tasks" unless total == count

  adapter.delete_list(list)
  rate
end

if run?("scan")
  count = n(100_000)
  list = "scan-#{count}-#{SecureRandom.hex(4)}"
  raw("load", count, list, runtimes: %w[multi])
  growth = 0.0
  m = rounds(lambda {
    r, g = scan_once(list, count)
    growth = [growth, g].max
    r
  }, -> { raw("scan", count, list) }, warmup: 3)
  a.delete_list(list)
  record.call("scan", m, 0.5, "tasks", note: format("peak RSS +%.1f MB", growth), peak_rss_growth_mb: growth.round(1))

  count = n(200_000)
  list = "scan-#{count}-#{SecureRandom.hex(4)}"
  raw("load", count, list, runtimes: %w[multi])
  _, growth200 = scan_once(list, count)
  a.delete_list(list)
  puts format("%-12s peak RSS growth over a %d-task scan: %.1f MB (target < 64)", "scan-200k", count, growth200)
  results << { workload: "scan-200k-memory", tasks: count, peak_rss_growth_mb: growth200.round(1), target_mb: 64,
               met: growth200 < 64 }
end

# count: Task::Task.count over a list of 1,000,000 tasks (ids read a page at a time), loaded by
# bench/raw. Fewer rounds: each reads the whole list.
if run?("count")
  count = n(1_000_000)
  list = "count-#{count}-#{SecureRandom.hex(4)}"
  loading = now
  raw("load", count, list, runtimes: %w[multi])
  puts format("%-12s loaded %d tasks in %.0f s", "count", count, now - loading)
  count_seconds = []
  m = rounds(lambda {
    started = now
    counted = Task::Task.count(list)
    raise "count said #{counted} of #{count}" unless counted == count

    count_seconds << now - started
    count / count_seconds.last
  }, -> { raw("count", count, list) }, rounds: 3)
  a.delete_list(list)
  record.call("count", m, 0.8, "tasks counted",
              note: format("count of %d in %.2f s (median); no target set, 0.8 shown for reference", count,
                           median(count_seconds.drop(1))),
              tasks: count, seconds: median(count_seconds.drop(1)).round(2))
end

# 1. sequential: save, find, complete one task at a time from one thread.
if run?("sequential")
  count = n(3000)
  seq_save_rates = []
  m = rounds(lambda {
    list = "seq-#{SecureRandom.hex(4)}"
    save_time = 0.0
    started = now
    count.times do |i|
      task = BenchTask.new(task_list: list, id: format("%07d", i), data: data(i))
      t = now
      task.save
      save_time += now - t
      Task::Task.find(list, task.id)
      task.complete
    end
    seq_save_rates << count / save_time
    count / (now - started)
  }, -> { raw("sequential", count) })
  record.call("sequential", m, 0.7, "cycles")
  seq_save_rate = median(seq_save_rates.drop(1)) # the first was the warm-up round
end

# 2. threads: 8 Ruby threads saving.
if run?("threads")
  count = n(16_000)
  m = rounds(-> { threads_rate(a, count) }, -> { raw("threads", count) })
  record.call("threads", m, 0.8, "saves",
              note: seq_save_rate && format("%.1fx workload 1's save rate (target >= 2)", m[:gem] / seq_save_rate),
              vs_sequential_saves: seq_save_rate && (m[:gem] / seq_save_rate).round(2))
end

# 3. bulk: store 50,000 tasks at once.
if run?("bulk")
  count = n(50_000)
  m = rounds(lambda {
    list = "bulk-#{SecureRandom.hex(4)}"
    tasks = Array.new(count) { |i| BenchTask.new(task_list: list, id: format("%07d", i), data: data(i)) }
    started = now
    a.store_many(tasks, batched: false)
    rate = count / (now - started)
    a.delete_list(list)
    rate
  }, -> { raw("bulk", count) })
  record.call("bulk", m, 0.9, "saves", note: "batched: false, one request per task")
end

# 3b. bulk-batched: the same 50,000 tasks as unlogged batches of one list (the default), in one
# list and spread over 100 lists, against raw Rust doing per-row inserts (64 in flight, the
# driver's best without batches) and raw Rust sending the same batches.
if run?("bulk-batched")
  count = n(50_000)
  [["bulk-batched", 1, 3.0], ["bulk-batch100", 100, 2.0]].each do |name, lists, per_row_target|
    list_of = ->(base, i) { lists == 1 ? base : "#{base}-#{i * lists / count}" }
    m = rounds(lambda {
      base = "bb-#{SecureRandom.hex(4)}"
      tasks = Array.new(count) { |i| BenchTask.new(task_list: list_of.(base, i), id: format("%07d", i), data: data(i)) }
      started = now
      a.store_many(tasks)
      rate = count / (now - started)
      lists.times { |k| a.delete_list(lists == 1 ? base : "#{base}-#{k}") }
      rate
    }, lambda {
      per_row = raw(lists == 1 ? "bulk" : "bulk100", count)
      batches = raw(lists == 1 ? "batched" : "batched100", count)
      { "per-row" => per_row.values.max, "batches" => batches.values.max }
    })
    per_row = median(m[:reference_rounds]["per-row"])
    batches = median(m[:reference_rounds]["batches"])
    record.call(name, m.merge(reference: per_row), per_row_target, "saves",
                note: "reference: raw per-row inserts", reference_kind: "per-row")
    if lists == 1
      record.call("#{name}/b", m.merge(reference: batches), 0.9, "saves",
                  note: "reference: raw Rust, the same batches", reference_kind: "batches")
    else
      puts format("%-12s %12.0f %12.0f %8.2f   (no target; raw Rust, the same batches)", "#{name}/b",
                  m[:gem], batches, m[:gem] / batches)
    end
  end
end

# 4. claims: claim + complete of stored tasks, from one thread and from 8 (a lightweight
# transaction per claim: what it costs here).
if run?("claim")
  [["claim", 1, n(1500)], ["claim8", 8, n(3000)]].each do |name, threads, count|
    m = rounds(-> { claim_rate(a, name, threads, count) }, -> { raw(name, count) })
    record.call(name, m, 0.7, "claims", note: "claim + complete; no target set, 0.7 shown for reference")
  end
end

# 4b. claim_each: claim, run (an empty block) and complete, batch 1 (a transaction a task, as
# `claim` + `complete`) and batch 50 (one conditional batch a window of 50, a delete a task and
# one conditional batch deleting the window's claims), from one thread and from 8. The
# reference sends the same statements: raw `claim`/`claim8` for batch 1, raw `batch50` /
# `batch50x8` for batch 50 (windows of its own per caller; no scan of the list).
if run?("each")
  [["each1", 1, 1, n(1000), "claim"], ["each1x8", 1, 8, n(2000), "claim8"],
   ["each50", 50, 1, n(5000), "batch50"], ["each50x8", 50, 8, n(10_000), "batch50x8"]].each do |name, batch, threads, count, ref|
    m = rounds(-> { claim_each_rate(a, name, batch, threads, count) }, -> { raw(ref, count) }, rounds: [ROUNDS, 3].min)
    record.call(name, m, 0.5, "tasks", note: "claim_each(batch: #{batch}), #{threads} thread#{"s" if threads > 1}; " \
                                         "reference: raw #{ref}; no target set, 0.5 shown for reference")
  end
end

# 5. objects: build + as_hash + JSON + from_hash, no I/O, against the plain-Ruby class.
if run?("objects")
  def objects(klass, count, from_hash)
    started = now
    count.times do |i|
      task = klass.build(task_list: "objects", id: i.to_s, n: i, s: "payload")
      from_hash.call(JSON.parse(JSON.generate(task.as_hash)))
    end
    count / (now - started)
  end
  count = n(50_000)
  m = rounds(-> { objects(BenchTask, count, Task::Task.method(:from_hash)) },
             -> { objects(PlainTask, count, PlainTask.method(:from_hash)) })
  record.call("objects", m, 1.0, "round trips", note: "reference: plain Ruby class")

  # objects-json: the hand-off to another worker as JSON: build, task.to_json and
  # Task::Task.from_json (both native), against the plain class doing JSON.generate,
  # JSON.parse and its own constructor.
  def objects_json(count)
    started = now
    count.times do |i|
      task = BenchTask.build(task_list: "objects", id: i.to_s, n: i, s: "payload")
      Task::Task.from_json(task.to_json)
    end
    count / (now - started)
  end
  m = rounds(-> { objects_json(count) }, -> { objects(PlainTask, count, PlainTask.method(:from_hash)) })
  record.call("objects-json", m, 1.5, "round trips", note: "to_json/from_json; reference: plain Ruby class")
end

# The SQLite workloads: the gem's SQLite store against raw Rust (rusqlite) and against the
# sqlite3 gem, on one file under tmp/.
require_relative "sqlite_workloads"
sqlite_workloads(results) if SQLITE_WORKLOADS.any? { |w| run?(w) }

if ONLY
  puts "TASK_BENCH_ONLY: a partial run; bench/results.json left as it was"
else
  File.write(File.join(__dir__, "results.json"), JSON.pretty_generate(
    { date: Time.now.utc.strftime("%Y-%m-%d %H:%M UTC"), ruby: RUBY_VERSION, cpus: File.read("/proc/cpuinfo").scan(/^processor/).size,
      scale: SCALE, rounds: ROUNDS, results: results }
  ) + "\n")
  puts "wrote bench/results.json"
end
