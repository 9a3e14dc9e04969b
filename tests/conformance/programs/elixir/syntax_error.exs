defmodule Broken do
  def main( do
    IO.puts("unreachable")
end
