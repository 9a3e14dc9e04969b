(define (main)
  (display "unbalanced"
