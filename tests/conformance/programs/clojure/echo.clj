(when-let [line (read-line)]
  (println line))
