# frozen_string_literal: true

# The SQLite workloads of bench/bench.rb (which loads this file and calls sqlite_workloads):
# the gem's SQLite store (Task::DataInterface::SqliteAdapter) against two references doing
# the same work on the same file, in the same run:
#
# * raw Rust: bench/raw's raw-sqlite, the store's schema, pragmas, transactions and SQL with
#   rusqlite alone (the SQLite compiled into the gem, the same version);
# * Ruby: bench/sqlite_ruby.rb, the same SQL from Ruby with the sqlite3 gem (Debian's
#   ruby-sqlite3, on the system's libsqlite3), the task data a Hash (JSON on the way in and
#   out).
#
# Each prints the gem's rate, both references' rates and the gem's ratio to each. A build
# without SqliteAdapter still measures the two references, and says the gem's side was
# skipped.
#
# The gem has a file of its own (tmp/bench-sqlite-<pid>/gem.db) and the references share
# another (ref.db, with one connection kept open on it all along, as the gem's process keeps
# one on its file), in the same directory, deleted at the end; the lists to scan and count are
# loaded (by raw-sqlite) into both before the gem opens its file. Nothing but the gem's process
# opens gem.db while the gem has it open: another process closing its last connection to a
# file the gem's process has opened since could delete the WAL under the gem (see
# bench/README.md, "SQLite").

require "fileutils"
require "json"
require "rbconfig"
require "securerandom"

SQLITE_WORKLOADS = %w[sqlite-sequential sqlite-threads sqlite-bulk sqlite-scan sqlite-count sqlite-claim].freeze
SQLITE_RAW = File.join(ENV.fetch("CARGO_TARGET_DIR", File.join(ROOT, "target")), "release", "raw-sqlite")
SQLITE_RUBY = File.join(__dir__, "sqlite_ruby.rb")
SQLITE_SKIPPED = "skipped: no SqliteAdapter in this build"
# TASK_BENCH_SQLITE_SYNCHRONOUS=normal runs all three sides with synchronous = NORMAL (no sync
# at each commit) instead of the store's default FULL: what the code costs, the disk aside.
SQLITE_SYNC = ENV.fetch("TASK_BENCH_SQLITE_SYNCHRONOUS", "full").downcase
raise "TASK_BENCH_SQLITE_SYNCHRONOUS must be full or normal" unless %w[full normal].include?(SQLITE_SYNC)

def sqlite_adapter_class
  Task::DataInterface.const_get(:SqliteAdapter, false)
rescue NameError
  nil
end

# One run of a reference (:raw or :ruby): its output line, parsed.
def sqlite_ref(kind, path, workload, count, list = nil)
  cmd = if kind == :raw
          [SQLITE_RAW, path, workload, count.to_s, *list]
        else
          [RbConfig.ruby, SQLITE_RUBY, path, workload, count.to_s, *list]
        end
  out = IO.popen({ "RAW_SYNCHRONOUS" => SQLITE_SYNC.upcase }, cmd, &:read)
  raise "#{File.basename(cmd[kind == :raw ? 0 : 1])} #{workload} failed" unless $?.success?

  JSON.parse(out)
end

def sqlite_rate(kind, path, workload, count, list = nil)
  r = sqlite_ref(kind, path, workload, count, list)
  r["ops"] / r["seconds"]
end

# Runs the gem (when there is one) and both references in turn, `rounds` times each after
# `warmup` rounds not counted; the medians.
def sqlite_rounds(gem, raw, ruby, warmup: 1, rounds: ROUNDS)
  rates = { gem: [], raw: [], ruby: [] }
  warmup.times do
    gem&.call
    raw.call
    ruby.call
  end
  rounds.times do
    rates[:gem] << gem.call if gem
    rates[:raw] << raw.call
    rates[:ruby] << ruby.call
  end
  { gem: gem && median(rates[:gem]), raw: median(rates[:raw]), ruby: median(rates[:ruby]), rounds: rates }
end

def sqlite_target(ratio, target)
  return "" unless target

  format("%s %.2f", ratio && ratio >= target ? ">=" : "NOT MET, target >=", target)
end

def sqlite_record(results, name, m, unit, raw_target: nil, ruby_target: nil, extra: {})
  gem, raw, ruby = m.values_at(:gem, :raw, :ruby)
  vs_raw = gem && gem / raw
  vs_ruby = gem && gem / ruby
  results << { workload: name, unit: unit, gem_rate: gem&.round(1), raw_rate: raw.round(1),
               ruby_sqlite3_rate: ruby.round(1), ratio_raw: vs_raw&.round(3), target_raw: raw_target,
               met_raw: raw_target && vs_raw ? vs_raw >= raw_target : nil,
               ratio_ruby_sqlite3: vs_ruby&.round(3), target_ruby_sqlite3: ruby_target,
               met_ruby_sqlite3: ruby_target && vs_ruby ? vs_ruby >= ruby_target : nil,
               raw_vs_ruby_sqlite3: (raw / ruby).round(3), skipped: gem.nil?,
               rounds: m[:rounds].transform_values { |rs| rs.map { |r| r.round(1) } } }.merge(extra)
  line = if gem
           format("%-18s %10.0f %10.0f %10.0f %8.2f %-22s %8.2f %s", name, gem, raw, ruby, vs_raw,
                  sqlite_target(vs_raw, raw_target), vs_ruby, sqlite_target(vs_ruby, ruby_target))
         else
           format("%-18s %10s %10.0f %10.0f   %s (raw/sqlite3 %.2f)", name, "-", raw, ruby, SQLITE_SKIPPED, raw / ruby)
         end
  puts line.rstrip
  puts format("%-18s %s", "", extra[:note]) if extra[:note]
end

def sqlite_workloads(results)
  klass = sqlite_adapter_class
  dir = File.join(ROOT, "tmp", "bench-sqlite-#{Process.pid}")
  FileUtils.mkdir_p(dir)
  gem_path = File.join(dir, "gem.db")
  path = File.join(dir, "ref.db")
  raise "#{SQLITE_RAW} is missing: run bin/bench (it builds bench/raw)" unless File.executable?(SQLITE_RAW)

  # The lists to scan and count, the same rows in both files (made as the store makes them).
  loaded = {}
  { "sqlite-scan" => n(100_000), "sqlite-count" => n(1_000_000) }.each do |name, count|
    next unless run?(name)

    list = "#{name.delete_prefix('sqlite-')}-#{count}-#{SecureRandom.hex(4)}"
    started = now
    sqlite_ref(:raw, path, "load", count, list)
    seconds = now - started
    sqlite_ref(:raw, gem_path, "load", count, list) if klass
    loaded[name] = [list, count, seconds]
  end
  sqlite_ref(:raw, path, "count", 0, "none") # the file made, when nothing was loaded
  # A connection kept open on ref.db for the whole run, as the gem's process keeps its own:
  # without it each reference process, closing the file's last connection, would delete the
  # WAL, and the next would pay for growing a new one at every commit.
  keeper = IO.popen([RbConfig.ruby, "-rsqlite3", "-e", <<~RUBY, path], "r+")
    db = SQLite3::Database.new(ARGV[0])
    db.get_first_value("PRAGMA journal_mode")
    $stdout.puts "open"
    $stdout.flush
    $stdin.read
    db.close
  RUBY
  keeper.gets

  sa = nil
  if klass
    sa = klass.new(path: gem_path, **(SQLITE_SYNC == "full" ? {} : { synchronous: SQLITE_SYNC.to_sym }))
    Task::Task.interface = Task::DataInterface::Interface.new(adapter: sa)
  end
  puts
  puts format("%-18s %10s %10s %10s %8s %-22s %8s %s", "SQLite workload", "gem /s", "raw /s", "sqlite3 /s",
              "gem/raw", "(target)", "gem/rb", "(target)")
  puts format("%-18s %s", "", "#{dir}/{gem,ref}.db; synchronous = #{SQLITE_SYNC.upcase}; raw: rusqlite, " \
                              "rb: Ruby's sqlite3 gem")
  puts format("%-18s %s", "", SQLITE_SKIPPED) unless klass

  # Warm all three up (the file's pages in the cache, statements prepared).
  if sa
    warm = "warm-#{SecureRandom.hex(4)}"
    200.times { |i| BenchTask.new(task_list: warm, id: i.to_s, data: data(i)).tap(&:save).complete }
  end
  sqlite_ref(:raw, path, "sequential", 200)
  sqlite_ref(:ruby, path, "sequential", 200)

  # scan: Task::Task.all over a 100,000-task list, and the memory it takes (the peak RSS
  # growth of the gem's process; the references' whole-process peaks beside it). First, while
  # the Ruby heap is small.
  if run?("sqlite-scan")
    list, count, = loaded["sqlite-scan"]
    growth = 0.0
    peaks = { raw: 0.0, ruby: 0.0 }
    peak_of = lambda do |kind|
      r = sqlite_ref(kind, path, "scan", count, list)
      raise "#{kind} scan saw #{r['ops']} of #{count}" unless r["ops"] == count

      peaks[kind] = [peaks[kind], r["peak_rss_mb"]].max
      r["ops"] / r["seconds"]
    end
    gem = sa && lambda {
      r, g = scan_once(list, count)
      growth = [growth, g].max
      r
    }
    m = sqlite_rounds(gem, -> { peak_of.(:raw) }, -> { peak_of.(:ruby) }, warmup: 2)
    note = format("%d tasks; peak RSS: gem %s, raw process %.1f MB, sqlite3 process %.1f MB", count,
                  sa ? format("+%.1f MB over the scan", growth) : "-", peaks[:raw], peaks[:ruby])
    sqlite_record(results, "sqlite-scan", m, "tasks", raw_target: 0.9,
                                                      extra: { note: note, tasks: count, peak_rss_growth_mb: sa && growth.round(1),
                                                               raw_peak_rss_mb: peaks[:raw], ruby_sqlite3_peak_rss_mb: peaks[:ruby] })
    sqlite_ref(:raw, path, "delete", 0, list)
    sa&.delete_list(list)
  end

  # count: Task::Task.count over a list of 1,000,000 tasks, loaded by raw-sqlite.
  if run?("sqlite-count")
    list, count, load_seconds = loaded["sqlite-count"]
    seconds = []
    gem = sa && lambda {
      started = now
      counted = Task::Task.count(list)
      raise "count said #{counted} of #{count}" unless counted == count

      seconds << now - started
      count / seconds.last
    }
    m = sqlite_rounds(gem, -> { sqlite_rate(:raw, path, "count", count, list) },
                      -> { sqlite_rate(:ruby, path, "count", count, list) }, rounds: 3)
    secs = sa && median(seconds.drop(1))
    note = format("count of %d (loaded by raw-sqlite in %.1f s)%s", count, load_seconds,
                  secs ? format(": %.3f s (median)", secs) : "")
    sqlite_record(results, "sqlite-count", m, "tasks counted", extra: { note: note, tasks: count, seconds: secs&.round(3) })
    sqlite_ref(:raw, path, "delete", 0, list)
    sa&.delete_list(list)
  end

  # sequential: save, find, complete one task at a time (3 transactions' worth: 2 commits).
  if run?("sqlite-sequential")
    count = n(3000)
    gem = sa && lambda {
      list = "seq-#{SecureRandom.hex(4)}"
      started = now
      count.times do |i|
        task = BenchTask.new(task_list: list, id: format("%07d", i), data: data(i))
        task.save
        Task::Task.find(list, task.id)
        task.complete
      end
      count / (now - started)
    }
    m = sqlite_rounds(gem, -> { sqlite_rate(:raw, path, "sequential", count) },
                      -> { sqlite_rate(:ruby, path, "sequential", count) })
    sqlite_record(results, "sqlite-sequential", m, "cycles", raw_target: 0.85, ruby_target: 2.0)
  end

  # threads: 8 threads saving (a connection each for the references; the gem's pool).
  if run?("sqlite-threads")
    count = n(16_000)
    gem = sa && -> { threads_rate(sa, count) }
    m = sqlite_rounds(gem, -> { sqlite_rate(:raw, path, "threads", count) },
                      -> { sqlite_rate(:ruby, path, "threads", count) })
    sqlite_record(results, "sqlite-threads", m, "saves", extra: { note: "no target set" })
  end

  # bulk: store_many of 50,000 tasks (1,000 to a transaction).
  if run?("sqlite-bulk")
    count = n(50_000)
    gem = sa && lambda {
      list = "bulk-#{SecureRandom.hex(4)}"
      tasks = Array.new(count) { |i| BenchTask.new(task_list: list, id: format("%07d", i), data: data(i)) }
      started = now
      sa.store_many(tasks)
      rate = count / (now - started)
      sa.delete_list(list)
      rate
    }
    m = sqlite_rounds(gem, -> { sqlite_rate(:raw, path, "bulk", count) },
                      -> { sqlite_rate(:ruby, path, "bulk", count) })
    sqlite_record(results, "sqlite-bulk", m, "saves", raw_target: 0.9, ruby_target: 3.0)
  end

  # claim: claim + complete of stored tasks, from one thread and from 8.
  if run?("sqlite-claim")
    [["sqlite-claim", 1, n(1500)], ["sqlite-claim8", 8, n(3000)]].each do |name, threads, count|
      workload = threads == 1 ? "claim" : "claim8"
      gem = sa && -> { claim_rate(sa, workload, threads, count) }
      m = sqlite_rounds(gem, -> { sqlite_rate(:raw, path, workload, count) },
                        -> { sqlite_rate(:ruby, path, workload, count) })
      sqlite_record(results, name, m, "claims", extra: { note: "claim + complete; no target set" })
    end
  end

  file = SQLITE_SYNC == "full" ? "results-sqlite.json" : "results-sqlite-#{SQLITE_SYNC}.json"
  # As for bench/results.json: only a run of every SQLite workload replaces the file.
  unless SQLITE_WORKLOADS.all? { |w| run?(w) }
    puts "TASK_BENCH_ONLY: a partial run; bench/#{file} left as it was"
    return
  end

  mine = results.select { |r| r[:workload].to_s.start_with?("sqlite") }
  File.write(File.join(__dir__, file), JSON.pretty_generate(
    { date: Time.now.utc.strftime("%Y-%m-%d %H:%M UTC"), ruby: RUBY_VERSION,
      cpus: File.read("/proc/cpuinfo").scan(/^processor/).size, scale: SCALE, rounds: ROUNDS,
      synchronous: SQLITE_SYNC.upcase, sqlite_adapter: !klass.nil?, ruby_sqlite3: sqlite3_versions, results: mine }
  ) + "\n")
  puts "wrote bench/#{file}"
ensure
  if keeper
    keeper.close_write
    keeper.close
  end
  FileUtils.rm_rf(dir) if dir
end

# The sqlite3 gem's version and the SQLite library it runs on (in a child: this process
# need not load it).
def sqlite3_versions
  IO.popen([RbConfig.ruby, "-rsqlite3", "-e", "print SQLite3::VERSION, ' on SQLite ', SQLite3::SQLITE_VERSION"],
           &:read)
end
