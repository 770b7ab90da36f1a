# frozen_string_literal: true

module Task
  # The nested hashes of a task read back from a store (and of from_hash/from_json): keys
  # are kept as Strings, as JSON gives them, and a Symbol key is taken as its name, so
  # `data[:opts][:retries]` and `data[:opts]["retries"]` read the same value, as they did
  # in task_rb (which read rows through ActiveSupport's with_indifferent_access). When
  # ActiveSupport::HashWithIndifferentAccess is loaded, read-back data holds that class
  # instead. The class itself is defined by the extension, which builds these directly.
  #
  # It is a Hash: JSON writes it exactly as the same Hash with String keys, and it is `==`
  # to that Hash. Hashes stored into it (and those inside Arrays stored into it) become
  # IndifferentHashes too; `to_hash` gives a plain Hash back, deeply.
  class IndifferentHash < Hash
    def self.[](*args)
      new.update(Hash[*args])
    end

    def [](key)
      super(indifferent_key(key))
    end

    def []=(key, value)
      super(indifferent_key(key), indifferent_value(value))
    end
    alias store []=

    def fetch(key, *default, &block)
      super(indifferent_key(key), *default, &block)
    end

    def key?(key)
      super(indifferent_key(key))
    end
    alias has_key? key?
    alias include? key?
    alias member? key?

    def dig(key, *rest)
      super(indifferent_key(key), *rest)
    end

    def assoc(key)
      super(indifferent_key(key))
    end

    def delete(key, &block)
      super(indifferent_key(key), &block)
    end

    def values_at(*keys)
      super(*keys.map { |k| indifferent_key(k) })
    end

    def fetch_values(*keys, &block)
      super(*keys.map { |k| indifferent_key(k) }, &block)
    end

    def slice(*keys)
      self.class.new.update(super(*keys.map { |k| indifferent_key(k) }))
    end

    def except(*keys)
      slice(*(self.keys - keys.map { |k| indifferent_key(k) }))
    end

    def update(*others, &block)
      others.each do |other|
        other.to_hash.each_pair do |key, value|
          key = indifferent_key(key)
          value = block.call(key, self[key], value) if block && key?(key)
          super(key => indifferent_value(value))
        end
      end
      self
    end
    alias merge! update

    def merge(*others, &block)
      dup.update(*others, &block)
    end

    # Hash's own versions of these return a plain Hash.
    def select(&block)
      return enum_for(:select) { size } unless block

      dup.tap { |h| h.select!(&block) }
    end
    alias filter select

    def reject(&block)
      return enum_for(:reject) { size } unless block

      dup.tap { |h| h.reject!(&block) }
    end

    def compact
      dup.tap(&:compact!)
    end

    def transform_values(&block)
      return enum_for(:transform_values) { size } unless block

      dup.tap { |h| h.transform_values!(&block) }
    end

    def replace(other)
      super(self.class.new.update(other))
    end

    def with_indifferent_access
      dup
    end

    # A plain Hash with String keys, nested hashes plain too.
    def to_hash
      plain = {}
      each_pair { |key, value| plain[key] = plain_value(value) }
      plain
    end

    def to_h(&block)
      block ? to_hash.to_h(&block) : to_hash
    end

    private

    def indifferent_key(key)
      key.is_a?(Symbol) ? key.name : key
    end

    def indifferent_value(value)
      case value
      when IndifferentHash then value
      when Hash then IndifferentHash.new.update(value)
      when Array then value.map { |v| indifferent_value(v) }
      else value
      end
    end

    def plain_value(value)
      case value
      when Hash then value.to_hash
      when Array then value.map { |v| plain_value(v) }
      else value
      end
    end
  end
end
