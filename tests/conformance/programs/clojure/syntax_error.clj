(defn main [
  (println "unbalanced"
