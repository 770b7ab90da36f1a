# frozen_string_literal: true

# A worker process for the cluster spec: takes tasks of a list with claim_each until the list
# is empty, writing the id of every task it executes to its own file, one line each, flushed
# at once. A call that fails for the cluster's sake (a node killed under it) is tried again:
# what is under test is that no task runs twice and none is left.
#
#   ruby -I lib spec/scripts/lease_worker.rb HOSTS KEYSPACE LIST OUTFILE
require "task"

# The class the spec stores its tasks as.
class FetchFile
  include Task::Task
end

hosts, keyspace, list, outfile = ARGV
adapter = Task::DataInterface::CassandraAdapter.new(hosts: hosts.split(","), keyspace: keyspace, consistency: :quorum,
                                                    serial_consistency: :serial, request_timeout: 5, retry_deadline: 30)
Task::Task.interface = Task::DataInterface::Interface.new(adapter: adapter)
out = File.open(outfile, "a")
out.sync = true
errors = 0
failing = 0
loop do
  begin
    Task::Task.claim_each(list, for: 20) do |task|
      out.puts(task.id)
      sleep 0.05 # the work; long enough that the workers are still busy when the node returns
    end
    break if Task::Task.count(list).zero?

    failing = 0
  rescue Task::Error => e
    errors += 1
    failing += 1
    warn "lease worker #{Process.pid}: #{e.class}: #{e.message[0, 300]}"
    # A cluster that has not recovered in minutes, or a call that cannot succeed: give up.
    abort "lease worker #{Process.pid}: #{failing} calls failed in a row" if failing >= 20
  end
  sleep 0.3
end
out.close
warn "lease worker #{Process.pid}: done after #{errors} failed calls"
