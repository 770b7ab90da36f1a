# frozen_string_literal: true

require "open3"

# exe/taskrb run as an operator runs it: a separate process, with the test node's settings in
# its environment (TASK_CASSANDRA_HOSTS, TASK_CASSANDRA_KEYSPACE) and the application's task
# classes given with -r unless +raw+. Gives [stdout, stderr, exit status]; with
# `let(:binmode) { true }`, the bytes as written (binary Strings).
RSpec.shared_context "the task command" do
  let(:options) { cassandra_options }
  let(:env) do
    { "TASK_CASSANDRA_HOSTS" => options[:hosts].map { |h| "#{h}:#{options[:port]}" }.join(","),
      "TASK_CASSANDRA_KEYSPACE" => options[:keyspace], "RUBYLIB" => File.join(TaskCommand::ROOT, "lib") }
  end
  let(:adapter) { cassandra_adapter }
  let(:binmode) { false }

  def task_cmd(*args, input: "", raw: false)
    classes = raw ? [] : ["-r", TaskCommand::CLASSES]
    out, err, status = Open3.capture3(env, RbConfig.ruby, TaskCommand::EXE, *classes, *args,
                                      stdin_data: input, binmode: binmode)
    [out, err, status.exitstatus]
  end
end

module TaskCommand
  ROOT = File.expand_path("../..", __dir__)
  EXE = File.join(ROOT, "exe", "taskrb")
  CLASSES = File.join(ROOT, "spec", "support", "task_classes.rb")
end
