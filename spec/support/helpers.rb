# frozen_string_literal: true

module SpecHelpers
  module_function

  # The node bin/test started, or the one TASK_CASSANDRA_HOSTS names.
  def cassandra_options
    {
      hosts: ENV.fetch("TASK_CASSANDRA_HOSTS", "127.0.0.1").split(",").map(&:strip),
      port: Integer(ENV.fetch("TASK_CASSANDRA_PORT", "9042")),
      keyspace: "task_spec"
    }
  end

  def cassandra_adapter(**extra)
    @schema_ready ||= begin
      Task::DataInterface::CassandraAdapter.new(**cassandra_options).create_schema
      Task::DataInterface::CassandraAdapter.new(**cassandra_options, tasks_table_name: :tasks_other).create_schema
      true
    end
    Task::DataInterface::CassandraAdapter.new(**cassandra_options, **extra)
  end

  def unique_list(name = "list")
    "#{name}-#{SecureRandom.hex(6)}"
  end

  # A monotonic clock, in seconds.
  def now
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  # A measured figure, printed in the RSpec output beside the example.
  def report(text)
    RSpec.configuration.reporter.message("    #{text}")
  end

  def use_adapter(adapter)
    Task::Task.interface = Task::DataInterface::Interface.new(adapter: adapter)
  end

  # A TCP server on a free loopback port that accepts connections and never answers: a
  # Cassandra node that hangs. Yields the port.
  def black_hole
    require "socket"
    server = TCPServer.new("127.0.0.1", 0)
    yield server.addr[1]
  ensure
    server&.close
  end
end
