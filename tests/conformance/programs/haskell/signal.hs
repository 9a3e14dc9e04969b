-- A SIGKILL to itself.
import System.Posix.Signals (raiseSignal, sigKILL)

main :: IO ()
main = raiseSignal sigKILL
