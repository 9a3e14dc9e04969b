loop :: Int -> IO ()
loop n = n `seq` loop (n + 1)

main :: IO ()
main = loop 0
