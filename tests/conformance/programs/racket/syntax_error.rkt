#lang racket/base
(define (main
  (displayln "unbalanced")
