# frozen_string_literal: true

RSpec.describe "TLS to Cassandra", :tls do
  before(:all) { TlsNode.ensure_started! }

  let(:list) { unique_list("tls") }

  it "saves, finds and completes over TLS, verifying the node against the CA file" do
    use_adapter(TlsNode.adapter)
    FetchFile.create(task_list: list, id: "1", filename: "secret.txt")
    expect(Task::Task.find(list, "1").filename).to eq("secret.txt")
    Task::Task.find(list, "1").complete
    expect(Task::Task.all(list).to_a).to eq([])
    expect(TlsNode.adapter.options).to include(tls: true, tls_ca_file: TlsNode.ca_file)
  end

  it "fails clearly without TLS, and when the node's certificate is not from a trusted CA" do
    plain = Task::DataInterface::CassandraAdapter.new(port: TlsNode::PORT, keyspace: "task_tls",
                                                      connect_timeout: 2, retry_deadline: 0.2)
    expect { plain.find(list, "1") }.to raise_error(Task::Error::NoHostAvailable, /127\.0\.0\.1:#{TlsNode::PORT}/)
    system_cas = Task::DataInterface::CassandraAdapter.new(port: TlsNode::PORT, keyspace: "task_tls", tls: true,
                                                           connect_timeout: 2, retry_deadline: 0.2)
    expect { system_cas.find(list, "1") }.to raise_error(Task::Error::NoHostAvailable, /certificate verify failed/)
  end

  it "rejects a CA file that does not exist" do
    expect { TlsNode.adapter(tls_ca_file: "/no/such/ca.pem") }.to raise_error(ArgumentError, %r{tls_ca_file "/no/such/ca.pem"})
  end
end
