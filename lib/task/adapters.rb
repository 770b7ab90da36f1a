# frozen_string_literal: true

module Task
  module DataInterface
    class CassandraAdapter
      # Where it points (hosts, keyspace, table) and at what consistency; never the password.
      def inspect
        o = options
        hosts = o[:hosts].map { |h| h.include?(":") ? h : "#{h}:#{o[:port]}" }.join(",")
        "#<#{self.class.name} hosts=#{hosts} keyspace=#{o[:keyspace]} table=#{o[:tasks_table_name]} " \
          "consistency=#{o[:consistency]}#{" user=#{o[:username]}" if o[:username]}>"
      end
    end
  end
end
