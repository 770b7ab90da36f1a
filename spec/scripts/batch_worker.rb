# frozen_string_literal: true

# A worker process for the claim batch specs: THREADS threads run claim_each over LIST with
# `batch: BATCH` and `for: LEASE` until the list is empty (or once, with ONCE=1), each writing
# a line per task it runs to OUTFILE: "id pid started finished" (monotonic seconds; one write
# each, so that lines of threads and processes do not mix). The block sleeps WORK seconds.
# At the end it writes "stats pid {json}" with the walks' counters added up.
#
#   ruby -I lib spec/scripts/batch_worker.rb STORE LIST BATCH THREADS LEASE WORK OUTFILE
#
# STORE: "cassandra:HOST:PORT:KEYSPACE" or "sqlite:PATH".
require "json"
require "task"

# The class the specs store their tasks as.
class FetchFile
  include Task::Task
end

store, list, batch, threads, lease, work, outfile = ARGV
kind, *where = store.split(":")
adapter = case kind
          when "cassandra"
            host, port, keyspace = where
            Task::DataInterface::CassandraAdapter.new(hosts: [host], port: Integer(port), keyspace: keyspace)
          when "sqlite" then Task::DataInterface::SqliteAdapter.new(path: where.join(":"))
          else abort "batch worker: unknown store #{store}"
          end
Task::Task.interface = Task::DataInterface::Interface.new(adapter: adapter)
out = File.open(outfile, "a")
out.sync = true
work = Float(work)
lock = Mutex.new
totals = Hash.new(0)
clock = -> { Process.clock_gettime(Process::CLOCK_MONOTONIC) }
Array.new(Integer(threads)) do
  Thread.new do
    stats = {}
    loop do
      Task::Task.claim_each(list, for: Float(lease), batch: Integer(batch), stats: stats) do |task|
        started = clock.call
        sleep work if work.positive?
        out.syswrite(format("%s %d %.6f %.6f\n", task.id, Process.pid, started, clock.call))
      end
      break if ENV["ONCE"] == "1" || Task::Task.count(list).zero?

      sleep 0.05
    end
    lock.synchronize { stats.each { |k, v| totals[k] += v } }
  end
end.each(&:join)
out.syswrite("stats #{Process.pid} #{JSON.generate(totals)}\n")
out.close
