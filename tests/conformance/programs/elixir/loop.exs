defmodule Spin do
  def loop(n), do: loop(n + 1)
end

Spin.loop(0)
