# frozen_string_literal: true

# The plain-Ruby reference of the SQLite workloads: what a Ruby program does with the sqlite3
# gem (Debian's ruby-sqlite3) and the gem's own SQL, schema and pragmas (WAL,
# synchronous = FULL, BEGIN IMMEDIATE for every write, 1,000 rows to a transaction in a bulk
# write, the same busy wait), with the task's data as a Ruby Hash: JSON.generate on the way
# in, JSON.parse on the way out, as the gem's tasks have it. The same command line and output
# as bench/raw's raw-sqlite:
#
#   ruby bench/sqlite_ruby.rb <path> <sequential|threads|bulk|load|scan|count|claim|claim8> <n> [list]
#
# Prints one JSON line: {"ops":..,"seconds":..,"peak_rss_mb":..}.

require "json"
require "sqlite3"

module SqliteRuby
  # ext/task_core/src/sqlite/schema.rs
  CREATE = <<~SQL
    CREATE TABLE IF NOT EXISTS tasks (
      task_list TEXT NOT NULL, id TEXT NOT NULL, type TEXT NOT NULL,
      data TEXT, saved_at INTEGER, expires_at INTEGER,
      PRIMARY KEY (task_list, id, type)) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS tasks_expiry ON tasks (expires_at) WHERE expires_at IS NOT NULL;
    CREATE TABLE IF NOT EXISTS claims (
      task_list TEXT NOT NULL, id TEXT NOT NULL,
      owner TEXT, owner_until INTEGER,
      attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
      PRIMARY KEY (task_list, id)) WITHOUT ROWID;
  SQL
  APPLICATION_ID = 0x5441_534B
  SCHEMA_VERSION = 1

  # tasks.rs
  UPSERT = "INSERT INTO tasks (task_list, id, type, data, saved_at, expires_at) " \
           "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (task_list, id, type) DO UPDATE SET " \
           "data = excluded.data, saved_at = excluded.saved_at, expires_at = excluded.expires_at"
  PURGE = "DELETE FROM tasks WHERE (task_list, id, type) IN " \
          "(SELECT task_list, id, type FROM tasks WHERE expires_at <= ?1 LIMIT ?2) " \
          "RETURNING task_list, id"
  PURGE_CLAIM = "DELETE FROM claims WHERE task_list = ?1 AND id = ?2 " \
                "AND NOT EXISTS (SELECT 1 FROM tasks WHERE task_list = ?1 AND id = ?2)"
  DELETE_TASK = "DELETE FROM tasks WHERE task_list = ?1 AND id = ?2"
  DELETE_CLAIM = "DELETE FROM claims WHERE task_list = ?1 AND id = ?2"
  BULK_CHUNK = 1000
  PURGE_EVERY = 64
  PURGE_ROWS = 500

  # read.rs
  FIND = "SELECT type, data, saved_at FROM tasks WHERE task_list = ?1 AND id = ?2 AND " \
         "(expires_at IS NULL OR expires_at > ?3) ORDER BY type LIMIT 1"
  PAGE_FROM_START = "SELECT id, type, data, saved_at FROM tasks WHERE task_list = ?1 " \
                    "AND (expires_at IS NULL OR expires_at > ?2) ORDER BY id, type LIMIT ?3"
  PAGE_AFTER = "SELECT id, type, data, saved_at FROM tasks WHERE task_list = ?1 " \
               "AND (expires_at IS NULL OR expires_at > ?2) AND (id, type) > (?4, ?5) " \
               "ORDER BY id, type LIMIT ?3"
  COUNT = "SELECT count(*) FROM tasks WHERE task_list = ?1 AND " \
          "(expires_at IS NULL OR expires_at > ?2)"
  PAGE_SIZE = 1000

  # claims.rs
  TASK_LIVE = "SELECT 1 FROM tasks WHERE task_list = ?1 AND id = ?2 " \
              "AND (expires_at IS NULL OR expires_at > ?3) LIMIT 1"
  READ = "SELECT owner, owner_until, attempts FROM claims WHERE task_list = ?1 AND id = ?2"
  TAKE = "INSERT INTO claims (task_list, id, owner, owner_until, attempts) " \
         "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (task_list, id) DO UPDATE SET " \
         "owner = excluded.owner, owner_until = excluded.owner_until, attempts = excluded.attempts"
  MAX_ATTEMPTS = 25

  RETRY_DEADLINE = 5.0

  # One connection with its prepared statements (each kept, as the store's statement cache
  # keeps them).
  class Conn
    @writes = 0
    @writes_lock = Mutex.new
    class << self
      # The store's "one write in 64 also purges" (one counter for the process).
      def purge_now?
        @writes_lock.synchronize do
          due = (@writes % PURGE_EVERY).zero?
          @writes += 1
          due
        end
      end
    end

    def initialize(path)
      @db = SQLite3::Database.new(path)
      @deadline = nil
      # wait.rs, `busy`: a few milliseconds at a time, up to the call's deadline.
      @db.busy_handler do |tries|
        left = @deadline && (@deadline - now)
        if left.nil? || left <= 0
          false
        else
          step = if tries <= 3 then 0.001 elsif tries <= 15 then 0.002 else 0.005 end
          sleep([step, left].min)
          true
        end
      end
      mark
      mode = @db.get_first_value("PRAGMA journal_mode = WAL")
      raise "journal_mode #{mode}" unless mode.casecmp?("wal")

      @db.execute("PRAGMA synchronous = #{ENV['RAW_SYNCHRONOUS'] == 'NORMAL' ? 'NORMAL' : 'FULL'}")
      @stmts = {}
    end

    def now
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end

    def micros_now
      Process.clock_gettime(Process::CLOCK_REALTIME, :microsecond)
    end

    def stmt(sql)
      @stmts[sql] ||= @db.prepare(sql)
    end

    # The first row of a query, the statement then reset (so that it holds no read snapshot).
    def one(sql, *binds)
      s = stmt(sql)
      row = s.execute(*binds).next
      s.reset!
      row
    end

    def with_deadline
      @deadline = now + RETRY_DEADLINE
      yield
    ensure
      @deadline = nil
    end

    def write_tx(&block)
      with_deadline { @db.transaction(:immediate, &block) }
    end

    # schema.rs, `check_or_create`, shortened: an empty file is made a task database.
    def mark
      app = @db.get_first_value("PRAGMA application_id")
      return if app == APPLICATION_ID

      write_tx do
        @db.execute_batch(CREATE)
        @db.execute_batch("PRAGMA application_id = #{APPLICATION_ID}; PRAGMA user_version = #{SCHEMA_VERSION};")
      end
    end

    def maybe_purge(now)
      return unless Conn.purge_now?

      gone = stmt(PURGE).execute(now, PURGE_ROWS).to_a
      gone.each { |list, id| stmt(PURGE_CLAIM).execute(list, id) }
    end

    def put(list, id, data)
      write_tx do
        t = micros_now
        stmt(UPSERT).execute(list, id, "BenchTask", JSON.generate(data), t, nil)
        maybe_purge(t)
      end
    end

    def put_many(list, rows)
      rows.each_slice(BULK_CHUNK) do |chunk|
        write_tx do
          t = micros_now
          upsert = stmt(UPSERT)
          chunk.each { |id, data| upsert.execute(list, id, "BenchTask", JSON.generate(data), t, nil) }
          maybe_purge(t)
        end
      end
    end

    def find(list, id)
      with_deadline do
        type, data, saved_at = one(FIND, list, id, micros_now)
        type && { task_list: list, id: id, type: type, data: data && JSON.parse(data), saved_at: saved_at }
      end
    end

    def delete(list, id)
      write_tx do
        stmt(DELETE_TASK).execute(list, id)
        stmt(DELETE_CLAIM).execute(list, id)
      end
    end

    def delete_list(list)
      write_tx do
        @db.execute("DELETE FROM tasks WHERE task_list = ?1", [list])
        @db.execute("DELETE FROM claims WHERE task_list = ?1", [list])
      end
    end

    # claims.rs, `claim`, for a task nobody holds: one transaction; true when won.
    def claim(list, id, owner)
      write_tx do
        t = micros_now
        next false unless one(TASK_LIVE, list, id, t)

        seen_owner, until_us, count = one(READ, list, id)
        count ||= 0
        next false if seen_owner && until_us && until_us > t
        next false if count >= MAX_ATTEMPTS

        stmt(TAKE).execute(list, id, owner, t - (t % 1_000_000) + (62 * 1_000_000), count + 1)
        true
      end
    end

    # A page at a time, each row a Hash with its data parsed; how many rows.
    def scan(list)
      with_deadline do
        total = 0
        after = nil
        loop do
          t = micros_now
          rows = if after
                   stmt(PAGE_AFTER).execute(list, t, PAGE_SIZE + 1, *after).to_a
                 else
                   stmt(PAGE_FROM_START).execute(list, t, PAGE_SIZE + 1).to_a
                 end
          more = rows.size > PAGE_SIZE
          rows.pop if more
          page = rows.map do |id, type, data, saved_at|
            { task_list: list, id: id, type: type, data: data && JSON.parse(data), saved_at: saved_at }
          end
          total += page.size
          break unless more

          after = [page.last[:id], page.last[:type]]
        end
        total
      end
    end

    def count(list)
      with_deadline { one(COUNT, list, micros_now).first }
    end

    def close
      @stmts.each_value(&:close)
      @db.close
    end
  end

  def self.data(i)
    { n: i, s: "payload #{i}" }
  end

  def self.rows(count)
    Array.new(count) { |i| [format("%07d", i), data(i)] }
  end

  def self.claims(path, list, count, callers)
    Array.new(callers) do |c|
      Thread.new do
        conn = Conn.new(path)
        owner = "sqlite-ruby:#{Process.pid}:#{c}"
        c.step(count - 1, callers) do |i|
          id = format("%07d", i)
          conn.claim(list, id, owner) or raise "claim of #{id} refused"
          conn.delete(list, id)
        end
        conn.close
      end
    end.each(&:join)
  end

  def self.peak_rss_mb
    File.read("/proc/self/status")[/^VmHWM:\s+(\d+)/, 1].to_i / 1024.0
  end

  def self.main(argv)
    if argv.size < 3
      warn "usage: sqlite_ruby.rb <path> <sequential|threads|bulk|load|scan|count|claim|claim8> <n> [list]"
      exit 2
    end
    path, workload, count, list = argv
    count = Integer(count)
    list ||= "ruby-#{workload}-#{Process.pid}"
    conn = Conn.new(path)
    clock = -> { Process.clock_gettime(Process::CLOCK_MONOTONIC) }
    started = clock.call
    ops = case workload
          when "sequential"
            count.times do |i|
              id = format("%07d", i)
              conn.put(list, id, data(i))
              conn.find(list, id) or raise "#{id} not found"
              conn.delete(list, id)
            end
            count
          when "threads"
            per = count / 8
            Array.new(8) do |c|
              Thread.new do
                mine = Conn.new(path)
                per.times { |i| mine.put(list, format("#{c}-%07d", i), data(i)) }
                mine.close
              end
            end.each(&:join)
            per * 8
          when "bulk", "load"
            # The rows exist before the clock starts, as the gem's tasks do.
            rows = rows(count)
            started = clock.call
            conn.put_many(list, rows)
            count
          when "claim", "claim8"
            conn.put_many(list, rows(count))
            started = clock.call
            claims(path, list, count, workload == "claim8" ? 8 : 1)
            count
          when "scan" then conn.scan(list)
          when "count" then conn.count(list)
          else
            warn "unknown workload #{workload}"
            exit 2
          end
    seconds = clock.call - started
    conn.delete_list(list) unless %w[load scan count].include?(workload)
    conn.close
    puts JSON.generate({ ops: ops, seconds: seconds, peak_rss_mb: peak_rss_mb.round(1) })
  end
end

SqliteRuby.main(ARGV) if $PROGRAM_NAME == __FILE__
