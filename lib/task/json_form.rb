# frozen_string_literal: true

require "json"

module Task
  #--
  # The JSON-native form of a task, for job arguments: Sidekiq 7 (and Sidekiq 6 under
  # `Sidekiq.strict_args!`) refuses as_hash's Symbol keys and values.
  module Task
    # The task as JSON gives it back: String keys all the way down, Symbols as Strings,
    # exactly `JSON.parse(JSON.generate(task.as_hash))`. `Task::Task.from_hash` takes it back.
    # Takes (and ignores) the options argument ActiveSupport passes.
    def as_json(_options = nil)
      JSON.parse(to_json)
    end

    # The JSON text of as_json: byte for byte `JSON.generate(task.as_json)`, written by the
    # extension (Ruby's generator writes it when the data holds objects with their own
    # to_json, or keys that would collide as strings). With a generator state (a task inside
    # a structure being generated, `JSON.pretty_generate`), as_json's to_json with it.
    # Task::Task.from_json takes it back.
    def to_json(*args)
      return as_json.to_json(*args) unless args.empty?

      compact_json || JSON.generate(JSON.parse(JSON.generate(as_hash)))
    end
  end
end
