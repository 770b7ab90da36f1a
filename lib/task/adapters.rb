# frozen_string_literal: true

# Each store's adapter class has its Ruby side (documentation, inspect, options such as
# logger:) in lib/task/adapters/STORE.rb; every file there is loaded.
Dir[File.join(__dir__, "adapters", "*.rb")].sort.each { |file| require file }
