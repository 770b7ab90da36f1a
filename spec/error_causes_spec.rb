# frozen_string_literal: true

# Errors that come from the Cassandra driver keep its error text as #driver_error; errors the
# gem makes on its own have none. Against the real node.
RSpec.describe "Task::Error#driver_error" do
  it "names the server's message when a query is rejected" do
    cassandra_adapter # the keyspace exists; this table does not
    missing = Task::DataInterface::CassandraAdapter.new(**cassandra_options, tasks_table_name: :no_such_table_xyz)
    expect { missing.find("l", "x") }.to raise_error(Task::Error::QueryRejected) { |e|
      expect(e.message).to include("no_such_table_xyz")
      expect(e.driver_error).to be_a(String)
      # The server's own words (Cassandra 3/4: "unconfigured table", 5: "does not exist").
      expect(e.driver_error).to match(/no_such_table_xyz/i)
      expect(e.driver_error).to match(/unconfigured table|does not exist/i)
    }
  end

  it "carries the driver's connection error when no host is reachable" do
    unreachable = Task::DataInterface::CassandraAdapter.new(
      **cassandra_options, hosts: ["127.0.0.1"], port: 1, connect_timeout: 1, retry_deadline: 0.5
    )
    expect { unreachable.find("l", "x") }.to raise_error(Task::Error::NoHostAvailable) { |e|
      expect(e.driver_error).to be_a(String)
      expect(e.driver_error).not_to be_empty
    }
  end

  it "is nil on an error the gem makes itself" do
    task = FetchFile.new(task_list: unique_list("causes"), id: "nan", data: { n: Float::NAN })
    expect { cassandra_adapter.store(task) }.to raise_error(Task::Error::BadData) { |e|
      expect(e.driver_error).to be_nil
    }
  end

  it "is nil on a Task::Error built by hand" do
    expect(Task::Error::Timeout.new("slow").driver_error).to be_nil
  end
end
