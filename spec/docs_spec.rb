# frozen_string_literal: true

require "tmpdir"

# The API is documented for ri (native methods included, from lib/task/native_docs.rb, which
# `gem install` turns into ri data) and typed in sig/ (RBS).
RSpec.describe "documentation" do
  root = File.expand_path("..", __dir__)

  it "lets ri describe the native methods, with their parameters" do
    Dir.mktmpdir("task-ri") do |dir|
      dir = File.join(dir, "ri")
      out = IO.popen(["rdoc", "--ri", "--quiet", "--op", dir, File.join(root, "lib")], err: %i[child out], &:read)
      expect($?.success?).to be(true), out
      {
        "Task::Task#save" => ["save(ttl: nil) -> nil", "upsert"],
        "Task::Task::all" => ["all(task_list, on_bad_row: :raise, after: nil)", "lazily"],
        "Task::Task#as_json" => ["String keys"],
        "Task::DataInterface::NativeAdapter#store_many" => ["store_many(tasks, concurrency: 64, batched: true)", "BulkFailure"],
        "Task::DataInterface::CassandraAdapter#create_schema" => ["replication:", "claims table"],
        "Task::DataInterface::CassandraAdapter::new" => ["Configuring the Cassandra adapter"],
        # The overviews, as a user reads them; the class methods every task class gets, as
        # Task::Task's (`ri Task::Task.build`, as one would type it).
        "Task" => ["at-least-once completion", "Task::Task is the mixin", "taskrb"],
        "Task::Task" => ["Include Task::Task in a class", "task.complete", "Claims and recovery", "claim_each"],
        "Task::Task.build" => ["TaskClass.build(task_list:, id: nil, **data) -> task", "Called on a task class"],
        "Task::Task.create" => ["build, then save"]
      }.each do |name, texts|
        shown = IO.popen(["ri", "-T", "-f", "markdown", "-d", dir, name], err: %i[child out], &:read)
        expect($?.success?).to be(true), "ri #{name}: #{shown}"
        expect(shown.gsub(/\s+/, " ")).to include(*texts) # ri wraps lines
        # Notes for readers of the source stay out of it.
        expect(shown).not_to match(/ext\/task_native|Documentation only|which Ruby does best|never required/)
      end
    end
  end

  it "has RBS signatures that validate and cover every public method" do
    out = IO.popen([RbConfig.ruby, Gem.bin_path("rbs", "rbs"), "-I", File.join(root, "sig"), "validate"],
                   err: %i[child out], &:read)
    expect($?.success?).to be(true), out
    sig = Dir[File.join(root, "sig", "**", "*.rbs")].map { |f| File.read(f) }.join("\n")
    data_interface = Task::DataInterface
    owners = {
      Task::Task => Task::Task.public_instance_methods(false),
      Task::Task.singleton_class => Task::Task.singleton_methods(false) - %i[included],
      data_interface::NativeAdapter => data_interface::NativeAdapter.public_instance_methods(false) -
                                       %i[claim renew release retry_task claims] # reached through Task::Task
    }
    # Every store's adapter class, its own methods and those of the modules it includes.
    Task::Signatures.adapter_classes.each do |adapter_class|
      modules = adapter_class.included_modules - data_interface::NativeAdapter.included_modules
      owners[adapter_class] = adapter_class.public_instance_methods(false) - %i[inspect] +
                              modules.flat_map { |m| m.public_instance_methods(false) }
      expect(sig).to include("class #{adapter_class.name.split("::").last} < NativeAdapter")
    end
    missing = owners.flat_map do |owner, names|
      prefix = owner.singleton_class? ? "self." : ""
      names.reject { |m| sig.include?("def #{prefix}#{m}:") }.map { |m| "#{owner}##{m}" }
    end
    expect(missing).to eq([])
  end

  it "shows every public method's parameters by name (irb, Method#inspect)" do
    data_interface = Task::DataInterface
    owners = [Task::Task, Task::Task.singleton_class, Task::Task::ClassMethods, data_interface::Interface,
              data_interface::NativeAdapter, *Task::Signatures.adapter_classes]
    unnamed = owners.flat_map do |owner|
      owner.public_instance_methods(false).filter_map do |name|
        params = owner.instance_method(name).parameters
        # Setters are attributes (a single unnamed value is what Ruby shows for attr_writer too).
        next if name.end_with?("=") || name == :included || params.all? { |(_, param_name)| param_name }

        "#{owner}##{name}#{params.inspect}"
      end
    end
    expect(unnamed).to eq([])
  end
end
