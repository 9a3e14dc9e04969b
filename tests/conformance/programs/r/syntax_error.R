f <- function( {
  cat("unbalanced")
