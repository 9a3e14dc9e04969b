main :: IO ()
main = do
  let x = 
  print x
