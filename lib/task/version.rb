# frozen_string_literal: true

module Task
  VERSION = "0.5.0"
end
