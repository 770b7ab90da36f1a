# frozen_string_literal: true

$LOAD_PATH.unshift File.expand_path("../lib", __dir__)
require "task"
require "json"
require "securerandom"

Dir[File.join(__dir__, "support", "**", "*.rb")].sort.each { |f| require f }

RSpec.configure do |config|
  config.include SpecHelpers
  config.disable_monkey_patching!
  config.order = :defined
  config.filter_run_when_matching :focus

  # Every example starts on a fresh in-memory store unless it picks another.
  config.before do
    Task::Task.interface = Task::DataInterface::Interface.new(adapter: Task::DataInterface::MemoryAdapter.new)
  end

  config.after do
    Task::DataInterface::Interface.adapter_builder = nil
    Task::Task.interface = nil
  end

  config.after(:suite) do
    FaultNode.stop!
    TlsNode.stop!
  end

end
