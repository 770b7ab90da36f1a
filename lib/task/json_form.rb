# frozen_string_literal: true

require "json"

module Task
  # The JSON-native form of a task, for job arguments: Sidekiq 7 (and Sidekiq 6 under
  # `Sidekiq.strict_args!`) refuses as_hash's Symbol keys and values.
  module Task
    # The task as JSON gives it back: String keys all the way down, Symbols as Strings,
    # exactly `JSON.parse(JSON.generate(task.as_hash))`. `Task::Task.from_hash` takes it back.
    # Takes (and ignores) the options argument ActiveSupport passes.
    def as_json(_options = nil)
      JSON.parse(JSON.generate(as_hash))
    end

    # The JSON text of as_hash (and of as_json: the same document).
    def to_json(*args)
      as_hash.to_json(*args)
    end
  end
end
