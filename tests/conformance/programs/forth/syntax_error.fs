: broken  undefined-word-xyz ;
