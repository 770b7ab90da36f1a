# frozen_string_literal: true

module Task
  module DataInterface
    # The Cassandra store's adapter class: what the extension defines for it is documented
    # here (ext/task_native/src/adapter/cassandra.rs defines it, with its options in
    # ext/task_native/src/options.rs); the Ruby side adds inspect and the logger: option.
    class CassandraAdapter
      Logging.adapter_logs(self)

      # Where it points (hosts, keyspace, table) and at what consistency; never the password.
      def inspect
        o = options
        hosts = o[:hosts].map { |h| h.include?(":") ? h : "#{h}:#{o[:port]}" }.join(",")
        "#<#{self.class.name} hosts=#{hosts} keyspace=#{o[:keyspace]} table=#{o[:tasks_table_name]} " \
          "consistency=#{o[:consistency]}#{" user=#{o[:username]}" if o[:username]}>"
      end

      ##
      # :singleton-method: new
      # :call-seq: new(hosts: ["127.0.0.1"], port: 9042, keyspace: "tasks", **options) -> adapter
      #
      # An adapter for a Cassandra (or Scylla) table; nothing connects until the first call.
      # Every option is in README.md, "Configuring the Cassandra adapter"; an unknown one
      # raises ArgumentError naming it.

      ##
      # :method: create_schema
      # :call-seq:
      #   create_schema(replication_factor: 1, claims: true, gc_grace_seconds: 10800) -> nil
      #   create_schema(replication: { "dc1" => 3 }, ...) -> nil
      #
      # Creates the keyspace, the task table and the claims table when missing.

      ##
      # :method: tune_table
      # :call-seq: tune_table(run: false, gc_grace_seconds: 10800) -> Array of String
      #
      # The ALTER TABLE statements that give existing tables the options for churn; with
      # +run+, runs them.

      ##
      # :method: describe
      # :call-seq: describe -> Hash
      #
      # What the node says about the deployment (what <tt>task doctor</tt> reports):
      # <tt>release_version</tt>, <tt>cql_version</tt>, <tt>server_time</tt> (a Time, the
      # node's clock), <tt>replication</tt> (the keyspace's options, nil when it does not
      # exist) and <tt>tables</tt> (the task and claims tables by name, each with
      # <tt>gc_grace_seconds</tt> and <tt>compaction</tt>, or nil when missing).

      ##
      # :method: create_claims_table
      # :call-seq: create_claims_table -> nil

      ##
      # :singleton-method: open_sessions
      # :call-seq: open_sessions -> Integer
      #
      # Driver sessions this process holds (one per distinct connection).
    end
  end
end
