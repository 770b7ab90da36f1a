# frozen_string_literal: true

require "securerandom"

module Task
  class CLI
    # The checks of `taskrb doctor`, each [name, passed, what was seen, the fix].
    class Doctor
      def initialize(adapter)
        @adapter = adapter
      end

      def run
        list = "task-doctor-#{SecureRandom.hex(4)}"
        checks = []
        report = nil
        begin
          before = Time.now
          report = @adapter.describe if @adapter.respond_to?(:describe)
          report = nil unless report.is_a?(Hash) && report.key?(:server_time) # a server's report
          @adapter.count(list) unless report
          after = Time.now
          checks << ["hosts answer", true, "connected to #{describe}", nil]
        rescue ::Task::Error, SystemCallError => e
          checks << ["hosts answer", false, "#{e.class}: #{e.message}",
                     "check --hosts/--port, that the node runs and that its port is open"]
          return checks
        end
        table_ok = report ? schema_checks(checks, report, before, after) : true
        return checks unless table_ok

        unless report
          check(checks, "claims table", "create it: taskrb schema create --replication-factor N (it leaves what exists as it is)") do
            @adapter.claims(list)
            "present"
          end
        end
        check(checks, "write, read and delete a task", "see the error; the user may lack INSERT/DELETE rights") do
          task = DoctorProbe.new(task_list: list, id: "probe", data: { at: Time.now.to_f })
          @adapter.store(task)
          @adapter.find(list, "probe") or raise ::Task::Error, "the saved task was not found"
          @adapter.delete(list, "probe")
          raise ::Task::Error, "the task was still there after delete" if @adapter.find(list, "probe")

          "saved, found and deleted"
        end
        checks
      end

      private

      # The server, keyspace, tables and clock, from what the node says; false when the task
      # table is missing (nothing more can be checked).
      def schema_checks(checks, report, before, after)
        o = @adapter.options
        checks << ["server", true, "Cassandra #{report[:release_version]}, CQL #{report[:cql_version]} " \
                                   "(the driver speaks native protocol v4)", nil]
        midpoint = before + (after - before) / 2
        skew = report[:server_time] - midpoint
        checks << ["clock", skew.abs <= 2, format("the server's clock is %+.3f s from this machine's", skew),
                   "synchronise both clocks (NTP): older_than and claims compare them"]
        replication = report[:replication]
        unless replication
          checks << ["keyspace", false, "#{o[:keyspace]} does not exist",
                     "create it and the tables: taskrb schema create --replication-factor N (or --replication DC:N,...), " \
                     "with these connection options (or check --keyspace)"]
          return false
        end
        checks << ["keyspace", true, "#{o[:keyspace]}, replication #{replication.map { |k, v| "#{k}=#{v}" }.join(", ")}", nil]
        table = o[:tasks_table_name].to_s
        tasks = report[:tables][table]
        unless tasks
          checks << ["task table", false, "#{o[:keyspace]}.#{table} does not exist",
                     "create it: taskrb schema create --replication-factor N, with these connection options " \
                     "(it leaves the keyspace as it is; or check --table)"]
          return false
        end
        compaction = tasks[:compaction]["class"].to_s.split(".").last
        tuned = tasks[:gc_grace_seconds] <= 86_400
        checks << ["task table", tuned, "#{o[:keyspace]}.#{table}: gc_grace_seconds #{tasks[:gc_grace_seconds]}, " \
                                        "compaction #{compaction}",
                   "give it the options for lists that churn: taskrb schema tune shows the statements, " \
                   "taskrb schema tune --run runs them (README, Lists that churn)"]
        claims = report[:tables]["#{table}_claims"]
        checks << ["claims table", !claims.nil?, claims ? "present" : "#{o[:keyspace]}.#{table}_claims does not exist",
                   "create it: taskrb schema create --replication-factor N (it leaves what exists as it is)"]
        true
      end

      def describe
        # A store picked by its flag says what it is (see CLI.store_flags); else Cassandra's hosts.
        store = @adapter.class.cli_store if @adapter.class.respond_to?(:cli_store)
        return store[:describe].call(@adapter) if store&.key?(:describe)

        o = @adapter.options
        hosts = Array(o[:hosts]).map { |h| with_port(h.to_s, o[:port]) }
        "#{hosts.join(",")}, table #{o[:keyspace]}.#{o[:tasks_table_name]}"
      end

      # A host as the adapter reads it ("host", "host:port", an IPv6 address, "[IPv6]:port"),
      # with the port it connects to.
      def with_port(host, port)
        return host if host.match?(/\A\[[^\]]*\]:\d+\z/) || host.match?(/\A[^:\[\]]+:\d+\z/)

        host.include?(":") ? "[#{host.delete_prefix("[").delete_suffix("]")}]:#{port}" : "#{host}:#{port}"
      end

      def check(checks, name, fix)
        checks << [name, true, yield, nil]
        true
      rescue ::Task::Error, SystemCallError => e
        checks << [name, false, "#{e.class}: #{e.message}", fix]
        false
      end
    end

    # The task doctor writes and deletes again.
    class DoctorProbe
      include ::Task::Task
    end
  end
end
