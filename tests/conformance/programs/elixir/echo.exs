case IO.gets("") do
  :eof -> :ok
  line -> IO.write(line)
end
